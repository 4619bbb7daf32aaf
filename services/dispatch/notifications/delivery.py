"""Delivers queued notifications through the ``Notifier``: leased with ``SKIP LOCKED`` (several
processes may run it), retried with exponential backoff, given up after the policy's maximum
attempts (status ``failed``, kept for the desk)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import orjson

from services.dispatch import policy as dispatch_policy
from services.dispatch.notifications.sender import DeliveryError, Notifier, Outgoing
from services.dispatch.notifications.service import CHANNEL
from shared import leasing

log = logging.getLogger(__name__)

LEASE_S = 30.0
BATCH = 50
_LEASE = f"""
UPDATE dispatch.notifications SET next_attempt_at = now() + make_interval(secs => $1)
WHERE id IN (
    SELECT id FROM dispatch.notifications
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY id LIMIT {BATCH} FOR UPDATE SKIP LOCKED
)
RETURNING id, dispatch_id, event, recipient_kind, payload, attempts
"""
# The whole batch settled in one statement. A message given up on is kept as ``failed`` and
# is not a silent end: the dispatch records it, and the desk is told (unless what failed was
# the desk's own message — then the step is the record). One statement, so no crash between
# giving up and telling anyone; no transaction around it, so no extra round trips.
_SETTLE = """
WITH settled AS (
    UPDATE dispatch.notifications AS n SET
        attempts = n.attempts + 1,
        last_error = r.error,
        status = CASE WHEN r.error IS NULL THEN 'delivered'
            WHEN n.attempts + 1 >= $3 THEN 'failed' ELSE n.status END,
        delivered_at = CASE WHEN r.error IS NULL THEN now() END,
        next_attempt_at = CASE WHEN r.error IS NULL THEN n.next_attempt_at
            ELSE now() + make_interval(secs => least(power(2, n.attempts + 1), $4)) END
    FROM unnest($1::bigint[], $2::text[]) AS r(id, error)
    WHERE n.id = r.id
    RETURNING n.id, n.dispatch_id, n.event, n.recipient_kind, n.status
), failed AS (
    SELECT id, dispatch_id, event, recipient_kind FROM settled
    WHERE status = 'failed' AND dispatch_id IS NOT NULL
), steps AS (
    INSERT INTO dispatch.dispatch_steps (dispatch_id, action, actor, detail)
    SELECT dispatch_id, 'notification_failed', 'system',
        jsonb_build_object('notification_id', id, 'event', event, 'recipient_kind', recipient_kind)
    FROM failed ORDER BY id
), desk AS (
    INSERT INTO dispatch.notifications
        (dispatch_id, event, recipient_kind, payload, status, attempts)
    SELECT f.dispatch_id, 'notification_failed', 'desk',
        jsonb_build_object('dispatch_id', f.dispatch_id, 'notification_id', f.id,
            'event', f.event, 'recipient_kind', f.recipient_kind),
        'pending', 0
    FROM failed f WHERE f.recipient_kind <> 'desk'
    RETURNING id
)
SELECT (SELECT count(*) FROM settled WHERE status = 'failed') AS gave_up,
    (SELECT pg_notify($5, '') WHERE EXISTS (SELECT 1 FROM desk)) AS woke
"""


async def deliver_due(pool: asyncpg.Pool, notifier: Notifier) -> tuple[int, int]:
    """One batch: (leased, failed)."""
    policy = dispatch_policy.load()
    rows = await pool.fetch(_LEASE, LEASE_S)  # one statement: atomic without a transaction
    if not rows:
        return 0, 0

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
    gave_up = await pool.fetchval(
        _SETTLE,
        [r["id"] for r in rows],
        errors,
        policy.notify_max_attempts,
        policy.notify_max_backoff_s,
        CHANNEL,
    )
    failed, first = leasing.first_error(errors)
    if failed:
        log.warning(
            "notifications: %d of %d not delivered (%d given up; first: %s)",
            failed,
            len(rows),
            gave_up,
            first,
        )
    return len(rows), failed


async def run(
    pool: asyncpg.Pool, listener: asyncpg.Connection, notifier: Notifier, stop: asyncio.Event
) -> None:
    await leasing.run(
        lambda: deliver_due(pool, notifier),
        batch=BATCH,
        listener=listener,
        channel=CHANNEL,
        stop=stop,
    )
