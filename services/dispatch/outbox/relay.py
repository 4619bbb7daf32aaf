"""Delivers dispatch's outbox to telemetry (resolve an alert, VISIT mode on/off): at least
once, with the row's idempotency key and a ``service`` token, retried with backoff; leased with
``SKIP LOCKED`` so several dispatch processes can run it. Woken by NOTIFY on commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import httpx

from services.dispatch.outbox.service import CHANNEL
from shared.auth import Role, TokenCodec
from shared.config import Settings

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
LEASE_S = 30.0
_LEASE = """
UPDATE dispatch.outbox SET next_attempt_at = now() + make_interval(secs => $1)
WHERE id IN (
    SELECT id FROM dispatch.outbox
    WHERE delivered_at IS NULL AND next_attempt_at <= now()
    ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED
)
RETURNING id, target, method, path, body, idempotency_key, attempts
"""


def backoff(attempts: int) -> float:
    return min(0.2 * 2**attempts, MAX_BACKOFF_S)


class Relay:
    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.token = TokenCodec(settings).issue(
            role=Role.service, sub="dispatch-relay", ttl=365 * 24 * 3600
        )
        self.client = httpx.AsyncClient(
            timeout=5.0, transport=transport, headers={"Authorization": f"Bearer {self.token}"}
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def deliver_due(self, pool: asyncpg.Pool) -> int:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_LEASE, LEASE_S)
        if not rows:
            return 0
        errors = await asyncio.gather(*(self._send(r) for r in rows))
        async with pool.acquire() as conn, conn.transaction():
            for row, error in zip(rows, errors, strict=True):
                if error is None:
                    await conn.execute(
                        "UPDATE dispatch.outbox SET delivered_at = now(), attempts = attempts + 1, "
                        "last_error = NULL WHERE id = $1",
                        row["id"],
                    )
                else:
                    log.warning(
                        "dispatch outbox %s to %s failed: %s", row["id"], row["target"], error
                    )
                    await conn.execute(
                        "UPDATE dispatch.outbox SET attempts = attempts + 1, last_error = $2, "
                        "next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
                        row["id"],
                        error,
                        backoff(row["attempts"]),
                    )
        return len(rows)

    async def _send(self, row) -> str | None:
        url = self.settings.service_url(row["target"]) + row["path"]
        try:
            response = await self.client.request(
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
        # 409 from telemetry's resolve means the alert is already closed (by the desk, or a
        # false alarm): nothing left to do, so it counts as delivered.
        if 200 <= response.status_code < 300 or (
            response.status_code == 409 and row["path"].endswith("/resolve")
        ):
            return None
        return f"HTTP {response.status_code}: {response.text[:300]}"

    async def run(
        self, pool: asyncpg.Pool, listener: asyncpg.Connection, stop: asyncio.Event
    ) -> None:
        wake = asyncio.Event()
        await listener.add_listener(CHANNEL, lambda *_: wake.set())
        while not stop.is_set():
            wake.clear()
            if await self.deliver_due(pool) == 20:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), 1.0)
