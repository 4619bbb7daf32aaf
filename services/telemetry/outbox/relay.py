"""Delivers the outbox to other services: at least once, with an idempotency key, so a
receiver outage delays a hand-off but never drops or doubles it.

Woken by NOTIFY the moment an alert commits (so an emergency reaches dispatch in
milliseconds), and by a timer for retries. ``FOR UPDATE SKIP LOCKED`` lets several relays
run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from prometheus_client import Counter

from services.telemetry.alerts import lifecycle
from services.telemetry.alerts.lifecycle import OUTBOX_CHANNEL
from shared.auth import Role, TokenCodec
from shared.config import Settings
from shared.db import plain_url

log = logging.getLogger(__name__)

DELIVERED = Counter("eldercare_outbox_delivered_total", "outbox messages delivered", ["target"])
FAILED = Counter("eldercare_outbox_failures_total", "failed delivery attempts", ["target"])
MAX_BACKOFF_S = 60.0

LEASE_S = 30.0
# Claim due rows by pushing their next attempt past the lease, and commit: the HTTP calls
# then run outside any transaction (a hanging receiver holds no locks and no other row), and
# a relay that dies mid-delivery simply lets the lease expire.
_LEASE = """
UPDATE telemetry.outbox SET next_attempt_at = now() + make_interval(secs => $1)
WHERE id IN (
    SELECT id FROM telemetry.outbox
    WHERE delivered_at IS NULL AND next_attempt_at <= now()
    ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED
)
RETURNING id, alert_id, target, method, path, body, idempotency_key, attempts
"""


def backoff(attempts: int) -> float:
    return min(0.2 * 2**attempts, MAX_BACKOFF_S)


class Relay:
    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.token = TokenCodec(settings).issue(
            role=Role.service, sub="telemetry-relay", ttl=365 * 24 * 3600
        )
        self._wake = asyncio.Event()

    def _url(self, target: str) -> str:
        return self.settings.service_url(target)

    async def run(self, stop: asyncio.Event) -> None:
        listener = await asyncpg.connect(plain_url(self.settings.database_url))
        await listener.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
        pool = await asyncpg.create_pool(
            plain_url(self.settings.database_url),
            min_size=1,
            max_size=2,
            server_settings={"timezone": "UTC"},
        )
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(
            transport=self.transport, timeout=5.0, headers=headers
        ) as client:
            try:
                while not stop.is_set():
                    # Cleared before looking, so a NOTIFY during a delivery is not lost.
                    self._wake.clear()
                    if await self.deliver_due(pool, client):
                        continue
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), 0.5)
            finally:
                await listener.close()
                await pool.close()

    async def deliver_due(self, pool: asyncpg.Pool, client: httpx.AsyncClient) -> bool:
        """Deliver every due message once, concurrently; True when a full page was due."""
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_LEASE, LEASE_S)
        results = await asyncio.gather(*(self._send(client, row) for row in rows))
        async with pool.acquire() as conn, conn.transaction():
            for row, error in zip(rows, results, strict=True):
                await self._record(conn, row, error)
        return len(rows) == 20

    async def _send(self, client: httpx.AsyncClient, row) -> str | None:
        """None when delivered; the error otherwise (kept in ``outbox.last_error``, never
        logged: a receiver's answer may quote the body). Only a 2xx counts: the receiver is
        idempotent on the key, so a repeat answers 2xx too, and anything else is retried."""
        url = self._url(row["target"]) + row["path"]
        try:
            response = await client.request(
                row["method"],
                url,
                content=row["body"],
                headers={
                    "Idempotency-Key": row["idempotency_key"],
                    "Content-Type": "application/json",
                },
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:300]}"

    async def _record(self, conn: asyncpg.Connection, row, error: str | None) -> None:
        if error is None:
            DELIVERED.labels(row["target"]).inc()
            await conn.execute(
                "UPDATE telemetry.outbox SET delivered_at = now(), attempts = attempts + 1, "
                "last_error = NULL WHERE id = $1",
                row["id"],
            )
            if row["alert_id"] is not None and row["target"] == "dispatch":
                await lifecycle.mark_dispatched(conn, row["alert_id"], actor="telemetry-relay")
            return
        FAILED.labels(row["target"]).inc()
        delay = backoff(row["attempts"])
        # Ids and the error's kind only: the body and the receiver's answer stay in the row.
        log.warning(
            "outbox %s (alert %s) to %s failed (%s), attempt %d; retry in %.1fs",
            row["id"],
            row["alert_id"],
            row["target"],
            error.split(":", 1)[0],
            row["attempts"] + 1,
            delay,
        )
        await conn.execute(
            "UPDATE telemetry.outbox SET attempts = attempts + 1, last_error = $2, "
            "next_attempt_at = $3 WHERE id = $1",
            row["id"],
            error,
            datetime.now(UTC) + timedelta(seconds=delay),
        )
