"""Delivers dispatch's outbox to telemetry (resolve an alert, VISIT mode on/off) through the
platform's one outbox relay (``shared.outbox``); woken by NOTIFY on commit, leased with
``SKIP LOCKED`` so several dispatch processes can run it."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import httpx

from services.dispatch.outbox.service import CHANNEL
from shared import leasing
from shared.config import Settings
from shared.outbox import Outbox, Sender, two_xx

log = logging.getLogger(__name__)

OUTBOX = Outbox("dispatch.outbox")


def accepted(row, response: httpx.Response) -> bool:
    # 409 from telemetry's resolve means the alert is already closed (by the desk, or a
    # false alarm): nothing left to do, so it counts as delivered.
    return two_xx(row, response) or (
        response.status_code == 409 and row["path"].endswith("/resolve")
    )


class Relay:
    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.sender = Sender(settings, sub="dispatch-relay", accept=accepted, transport=transport)

    async def close(self) -> None:
        await self.sender.close()

    async def deliver_due(self, pool: asyncpg.Pool) -> tuple[int, int]:
        """One batch: (leased, failed)."""
        rows = await OUTBOX.lease(pool)
        if not rows:
            return 0, 0
        errors = await asyncio.gather(*(self.sender.send(r) for r in rows))
        await OUTBOX.settle(pool, rows, errors)
        failed, first = leasing.first_error(errors)
        if failed:
            log.warning(
                "dispatch outbox: %d of %d messages not delivered (first: %s)",
                failed,
                len(rows),
                first.split(":", 1)[0] if first else None,
            )
        return len(rows), failed

    async def run(
        self, pool: asyncpg.Pool, listener: asyncpg.Connection, stop: asyncio.Event
    ) -> None:
        await leasing.run(
            lambda: self.deliver_due(pool),
            batch=OUTBOX.batch,
            listener=listener,
            channel=CHANNEL,
            stop=stop,
        )
