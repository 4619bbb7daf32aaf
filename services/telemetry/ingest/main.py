"""``eldercare ingest``: the ingest worker, the outbox relay and the monitor, until
SIGTERM/SIGINT. ``/metrics``, ``/healthz`` and ``/readyz`` on ``ELDERCARE_INGEST_METRICS_PORT``
(``/readyz`` is 503 while the worker cannot store or a broker link is not subscribed)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from services.telemetry import monitor as monitor_loop
from services.telemetry.ingest.health import Health, OpsServer
from services.telemetry.ingest.worker import IngestWorker
from services.telemetry.outbox.relay import Relay
from shared.config import Settings, get_settings
from shared.observability import configure_logging
from shared.tasks import supervised

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--client-id", help="stable MQTT client id (persistent session)")
    parser.add_argument(
        "--only",
        choices=["urgent", "bulk"],
        help="run one path: `urgent` (emergencies, falls, gateway status — its own process "
        "keeps its latency low) or `bulk` (everything else, urgent topics as a safety net)",
    )
    parser.add_argument(
        "--no-relay", action="store_true", help="do not deliver the outbox from this process"
    )
    parser.add_argument(
        "--no-monitor",
        action="store_true",
        help="do not run the time-based rules and housekeeping in this process",
    )


async def serve(
    settings: Settings,
    *,
    client_id: str | None,
    only: str | None = None,
    relay: bool,
    monitor: bool,
    stop: asyncio.Event,
    health: Health | None = None,
) -> None:
    worker = IngestWorker(settings, client_id=client_id, only=only, health=health)
    # Each part restarts on its own failure: a relay or monitor error never stops ingest.
    tasks = [asyncio.create_task(supervised("ingest", lambda: worker.run(stop)))]
    if relay:
        tasks.append(asyncio.create_task(supervised("relay", lambda: Relay(settings).run(stop))))
    if monitor:
        tasks.append(
            asyncio.create_task(supervised("monitor", lambda: monitor_loop.run(settings, stop)))
        )
    await asyncio.gather(*tasks)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if not settings.database_url:
        print("eldercare ingest: set ELDERCARE_DATABASE_URL")
        return 2
    configure_logging("ingest", level=settings.log_level, json=settings.log_json)
    client_id = args.client_id or settings.ingest_client_id
    health = Health(
        (client_id or f"ingest-pid{os.getpid()}") + (f"/{args.only}" if args.only else "")
    )
    ops: OpsServer | None = None
    if settings.ingest_metrics_port:
        try:
            ops = OpsServer(health, settings.ingest_metrics_port).start()
        except OSError as exc:  # a second replica on the same host: run without /metrics
            log.warning(
                "metrics port %s unavailable (%s); set ELDERCARE_INGEST_METRICS_PORT",
                settings.ingest_metrics_port,
                exc,
            )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(
            settings,
            client_id=args.client_id,
            only=args.only,
            relay=not args.no_relay,
            monitor=not args.no_monitor,
            stop=stop,
            health=health,
        )

    try:
        asyncio.run(main())
    finally:
        if ops is not None:
            ops.stop()
    return 0
