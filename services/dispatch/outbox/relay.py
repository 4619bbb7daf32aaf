"""Delivers dispatch's outbox to telemetry (resolve an alert, VISIT mode on/off): at least
once, with the row's idempotency key and a ``service`` token, retried with backoff; leased with
``SKIP LOCKED`` so several dispatch processes can run it. Woken by NOTIFY on commit."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import httpx

from services.dispatch import leasing
from services.dispatch.outbox.service import CHANNEL
from shared.auth import Role, TokenCodec
from shared.config import Settings

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
LEASE_S = 30.0
BATCH = 20
_LEASE = f"""
UPDATE dispatch.outbox SET next_attempt_at = now() + make_interval(secs => $1)
WHERE id IN (
    SELECT id FROM dispatch.outbox
    WHERE delivered_at IS NULL AND next_attempt_at <= now()
    ORDER BY id LIMIT {BATCH} FOR UPDATE SKIP LOCKED
)
RETURNING id, target, method, path, body, idempotency_key, attempts
"""
# The whole batch settled at once: delivered rows stamped, failed ones rescheduled with
# their own backoff (0.2 s doubling per attempt, capped).
_SETTLE = """
UPDATE dispatch.outbox AS o SET
    attempts = o.attempts + 1,
    delivered_at = CASE WHEN r.error IS NULL THEN now() END,
    last_error = r.error,
    next_attempt_at = CASE WHEN r.error IS NULL THEN o.next_attempt_at
        ELSE now() + make_interval(secs => least(0.2 * power(2, o.attempts), $3)) END
FROM unnest($1::bigint[], $2::text[]) AS r(id, error)
WHERE o.id = r.id
"""


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

    async def deliver_due(self, pool: asyncpg.Pool) -> tuple[int, int]:
        """One batch: (leased, failed)."""
        rows = await pool.fetch(_LEASE, LEASE_S)  # one statement: atomic without a transaction
        if not rows:
            return 0, 0
        errors = await asyncio.gather(*(self._send(r) for r in rows))
        await pool.execute(_SETTLE, [r["id"] for r in rows], errors, MAX_BACKOFF_S)
        failed, first = leasing.first_error(errors)
        if failed:
            log.warning(
                "dispatch outbox: %d of %d messages not delivered (first: %s)",
                failed,
                len(rows),
                first,
            )
        return len(rows), failed

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
        await leasing.run(
            lambda: self.deliver_due(pool),
            batch=BATCH,
            listener=listener,
            channel=CHANNEL,
            stop=stop,
        )
