"""amqtt, the pure-Python fallback broker, with one fix: ``python -m shared.amqtt_broker CONFIG``.

amqtt 0.12 re-sends retained messages when a client connects, meant for the subscriptions of
a resumed session, but it walks the filters of *every* session on the broker: a client that
has subscribed to nothing yet receives the retained ``…/status`` of every gateway that some
other client's filter matches (a fresh gateway gets the whole district's statuses; a test
subscriber sees statuses left by earlier tests). Here a retained message is sent for a filter
only to a session that holds that filter, which is what MQTT 3.1.1 asks (retained messages
answer a subscription, [MQTT-3.3.1-6]).

Everything else is amqtt's own ``broker_script``: same config file, same plugins.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

log = logging.getLogger("shared.amqtt_broker")


def patch_retained_delivery() -> None:
    """Only a session subscribed to ``filter`` gets the retained messages matching it."""
    from amqtt.broker import Broker

    original = Broker._publish_retained_messages_for_subscription
    if getattr(original, "_eldercare_own_filters_only", False):
        return

    async def own_filters_only(self: Any, subscription: tuple[str, int], session: Any) -> None:
        holders = self._subscriptions.get(subscription[0], ())
        if any(held.client_id == session.client_id for held, _ in holders):
            await original(self, subscription, session)

    own_filters_only._eldercare_own_filters_only = True  # type: ignore[attr-defined]
    Broker._publish_retained_messages_for_subscription = own_filters_only


def main(argv: list[str] | None = None) -> int:
    from amqtt.broker import Broker
    from amqtt.utils import read_yaml_config

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m shared.amqtt_broker CONFIG.yaml", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="[%(asctime)s] %(levelname)s %(message)s")
    patch_retained_delivery()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    broker = Broker(read_yaml_config(args[0]), loop=loop)
    loop.run_until_complete(broker.start())
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        loop.run_until_complete(broker.shutdown())
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
