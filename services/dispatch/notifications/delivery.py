"""Delivers queued notifications through the ``Notifier``: leased with ``SKIP LOCKED`` (several
processes may run it), retried with exponential backoff, given up after the policy's maximum
attempts (status ``failed``, kept for the desk)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import orjson

from services.dispatch import policy as dispatch_policy
from services.dispatch.notifications.sender import DeliveryError, Notifier, Outgoing
from services.dispatch.notifications.service import CHANNEL

log = logging.getLogger(__name__)

LEASE_S = 30.0
_LEASE = """
UPDATE dispatch.notifications SET next_attempt_at = now() + make_interval(secs => $1)
WHERE id IN (
    SELECT id FROM dispatch.notifications
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY id LIMIT 50 FOR UPDATE SKIP LOCKED
)
RETURNING id, event, recipient_kind, payload, attempts
"""


def backoff(attempts: int, cap: float) -> float:
    return min(1.0 * 2**attempts, cap)


async def deliver_due(pool: asyncpg.Pool, notifier: Notifier) -> int:
    policy = dispatch_policy.load()
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(_LEASE, LEASE_S)
    if not rows:
        return 0

    async def one(row) -> str | None:
        try:
            await notifier.send(
                Outgoing(
                    row["id"], row["event"], row["recipient_kind"], orjson.loads(row["payload"])
                )
            )
        except DeliveryError as exc:
            return str(exc)[:300]
        except Exception as exc:  # a broken provider plug-in must not stop the queue
            log.exception("notifier raised")
            return f"{type(exc).__name__}: {exc}"[:300]
        return None

    errors = await asyncio.gather(*(one(r) for r in rows))
    async with pool.acquire() as conn, conn.transaction():
        for row, error in zip(rows, errors, strict=True):
            if error is None:
                await conn.execute(
                    "UPDATE dispatch.notifications SET status = 'delivered', delivered_at = now(), "
                    "attempts = attempts + 1, last_error = NULL WHERE id = $1",
                    row["id"],
                )
                continue
            attempts = row["attempts"] + 1
            gave_up = attempts >= policy.notify_max_attempts
            log.warning(
                "notification %s failed (%s)%s", row["id"], error, "; giving up" if gave_up else ""
            )
            await conn.execute(
                "UPDATE dispatch.notifications SET attempts = $2, last_error = $3, "
                "status = CASE WHEN $4 THEN 'failed' ELSE status END, "
                "next_attempt_at = now() + make_interval(secs => $5) WHERE id = $1",
                row["id"],
                attempts,
                error,
                gave_up,
                backoff(attempts, policy.notify_max_backoff_s),
            )
    return len(rows)


async def run(
    pool: asyncpg.Pool, listener: asyncpg.Connection, notifier: Notifier, stop: asyncio.Event
) -> None:
    wake = asyncio.Event()
    await listener.add_listener(CHANNEL, lambda *_: wake.set())
    while not stop.is_set():
        wake.clear()
        if await deliver_due(pool, notifier) == 50:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), 1.0)
