"""Delivers telemetry's outbox to dispatch (an emergency's hand-off, a false alarm's cancel)
through the platform's one outbox relay (``shared.outbox``): at least once, with an
idempotency key, so a dispatch outage delays a hand-off but never drops or doubles it.

Woken by NOTIFY the moment an alert commits (so an emergency reaches dispatch in
milliseconds), and by its rows' own retry schedule. ``FOR UPDATE SKIP LOCKED`` lets several
relays run side by side. A delivered hand-off marks its alert ``dispatched``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg
import httpx
from prometheus_client import Counter

from services.telemetry.alerts import lifecycle
from services.telemetry.alerts.lifecycle import OUTBOX_CHANNEL
from shared import leasing
from shared.config import Settings
from shared.db import plain_url
from shared.outbox import Outbox, Sender

log = logging.getLogger(__name__)

DELIVERED = Counter("eldercare_outbox_delivered_total", "outbox messages delivered", ["target"])
FAILED = Counter("eldercare_outbox_failures_total", "failed delivery attempts", ["target"])

OUTBOX = Outbox("telemetry.outbox", extra=("alert_id",))


class Relay:
    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.transport = transport

    async def run(self, stop: asyncio.Event) -> None:
        dsn = plain_url(self.settings.database_url)
        listener = await asyncpg.connect(dsn)
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=2, server_settings={"timezone": "UTC"}
        )
        sender = Sender(self.settings, sub="telemetry-relay", transport=self.transport)
        try:
            await leasing.run(
                lambda: self.deliver_due(pool, sender),
                batch=OUTBOX.batch,
                listener=listener,
                channel=OUTBOX_CHANNEL,
                stop=stop,
            )
        finally:
            await sender.close()
            await listener.close()
            await pool.close()

    async def deliver_due(self, pool: asyncpg.Pool, sender: Sender) -> tuple[int, int]:
        """One batch, delivered concurrently: (leased, failed)."""
        rows = await OUTBOX.lease(pool)
        if not rows:
            return 0, 0
        errors = await asyncio.gather(*(sender.send(row) for row in rows))
        async with pool.acquire() as conn, conn.transaction():
            await self.settle(conn, rows, errors)
        return len(rows), sum(e is not None for e in errors)

    async def settle(
        self, conn: asyncpg.Connection, rows: Sequence, errors: Sequence[str | None]
    ) -> None:
        """Record a batch's outcome; the caller owns the transaction."""
        await OUTBOX.settle(conn, rows, errors)
        for row, error in zip(rows, errors, strict=True):
            if error is None:
                DELIVERED.labels(row["target"]).inc()
                if row["alert_id"] is not None and row["path"] == "/v1/dispatches":
                    await lifecycle.mark_dispatched(conn, row["alert_id"], actor="telemetry-relay")
                continue
            FAILED.labels(row["target"]).inc()
            # Ids and the error's kind only: the body and the receiver's answer stay in the row.
            log.warning(
                "outbox %s (alert %s) to %s failed (%s), attempt %d",
                row["id"],
                row["alert_id"],
                row["target"],
                error.split(":", 1)[0],
                row["attempts"] + 1,
            )
