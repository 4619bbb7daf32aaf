"""Every change of an alert's state, in one place: raise (or count a repeat), acknowledge,
hand to dispatch, escalate, resolve or close as a false alarm — each step logged in
``alert_log`` (the audit trail and the SSE feed) in the same transaction.

Plain asyncpg on a connection inside the caller's transaction: the ingest worker, the
monitor and the relay call it on their own connections; the REST app on the request's
(``shared.uow`` gives the session, ``raw()`` its asyncpg connection).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from services.telemetry.alerts import rules
from shared.db import new_id

NOTIFY_CHANNEL = "telemetry_alerts"
OUTBOX_CHANNEL = "telemetry_outbox"
DISPATCHED_KINDS = frozenset({"emergency", "fall"})


@dataclass(frozen=True)
class Raised:
    alert_id: uuid.UUID
    created: bool


_ACTIVE = """
SELECT id, last_event_at, severity FROM telemetry.alerts
WHERE dedup_key = $1 AND status IN ('open', 'acknowledged', 'dispatched')
ORDER BY raised_at DESC LIMIT 1 FOR UPDATE
"""

# A new alert, its log entry (the SSE event), its dispatch hand-off and both notifications
# in one round trip: on the emergency path every round trip is latency.
_RAISE = """
WITH alert AS (
    INSERT INTO telemetry.alerts (id, elder_id, gateway_id, device_id, kind, severity, status,
        dedup_key, occurrences, first_event_at, last_event_at, raised_at, escalation_level,
        value, details)
    VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, 1, $8, $8, now(), 0, $9, $10)
    RETURNING *
), entry AS (
    INSERT INTO telemetry.alert_log (alert_id, action, actor, at, elder_id, snapshot)
    SELECT a.id, 'raised', 'system', now(), a.elder_id, to_jsonb(a) FROM alert a
    RETURNING seq
), handoff AS (
    INSERT INTO telemetry.outbox (alert_id, target, method, path, body, idempotency_key,
        created_at, attempts, next_attempt_at)
    SELECT a.id, 'dispatch', 'POST', '/v1/dispatches',
           jsonb_build_object('alert_id', a.id, 'elder_id', a.elder_id, 'kind', a.kind,
                              'raised_at', a.raised_at),
           'alert:' || a.id, now(), 0, now()
    FROM alert a WHERE $11
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
)
SELECT pg_notify($12, (SELECT seq FROM entry)::text),
       CASE WHEN $11 THEN pg_notify($13, '') END
"""

_REPEAT = """
UPDATE telemetry.alerts SET occurrences = occurrences + 1,
    last_event_at = greatest(last_event_at, $2),
    severity = CASE WHEN $3 = 'critical' THEN 'critical' ELSE severity END,
    value = coalesce($4, value)
WHERE id = $1
"""

_LOG = """
WITH entry AS (
    INSERT INTO telemetry.alert_log (alert_id, action, actor, at, elder_id, snapshot)
    SELECT a.id, $2, $3, now(), a.elder_id, to_jsonb(a) FROM telemetry.alerts a WHERE a.id = $1
    RETURNING seq
)
SELECT pg_notify($4, seq::text) FROM entry
"""


async def log(conn: asyncpg.Connection, alert_id: uuid.UUID, action: str, actor: str) -> None:
    await conn.execute(_LOG, alert_id, action, actor, NOTIFY_CHANNEL)


async def raise_alert(
    conn: asyncpg.Connection,
    *,
    kind: str,
    severity: str,
    subject: str,
    at: datetime,
    elder_id: uuid.UUID | None = None,
    gateway_id: str | None = None,
    device_id: str | None = None,
    value: float | None = None,
    details: dict[str, Any] | None = None,
    window_s: int | None = None,
) -> Raised:
    """Raise an alert, or count this occurrence on the active one of the same (subject, kind)
    when it is within the de-duplication window. Emergencies and falls also queue their
    hand-off to dispatch in the same transaction."""
    key = rules.dedup_key(subject, kind)
    window = rules.defaults().dedup_window_s if window_s is None else window_s
    # Serialise concurrent raisers of the same key (several ingest replicas).
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
    active = await conn.fetchrow(_ACTIVE, key)
    if active is not None and rules.absorbs(active["last_event_at"], at, window):
        await conn.execute(_REPEAT, active["id"], at, severity, value)
        return Raised(active["id"], created=False)
    alert_id = new_id()
    await conn.execute(
        _RAISE,
        alert_id,
        elder_id,
        gateway_id,
        device_id,
        kind,
        severity,
        key,
        at,
        value,
        orjson.dumps(details or {}).decode(),
        kind in DISPATCHED_KINDS,
        NOTIFY_CHANNEL,
        OUTBOX_CHANNEL,
    )
    return Raised(alert_id, created=True)


async def close_active(
    conn: asyncpg.Connection, *, subject: str, kind: str, actor: str, note: str
) -> int:
    """Resolve the active alert of (subject, kind), e.g. when a gateway comes back online."""
    rows = await conn.fetch(
        "UPDATE telemetry.alerts SET status = 'resolved', resolved_at = now(), "
        "resolved_by = $2, resolution_note = $3 WHERE dedup_key = $1 "
        "AND status IN ('open', 'acknowledged', 'dispatched') RETURNING id",
        rules.dedup_key(subject, kind),
        actor,
        note,
    )
    for row in rows:
        await log(conn, row["id"], "resolved", actor)
    return len(rows)


async def acknowledge(
    conn: asyncpg.Connection, alert_id: uuid.UUID, *, actor: str, note: str | None
) -> bool:
    """Somebody has it. An alert already handed to dispatch stays ``dispatched``. The
    condition lives in the UPDATE: two desks acknowledging at once, one wins."""
    done = await conn.fetchval(
        "UPDATE telemetry.alerts SET acknowledged_at = now(), acknowledged_by = $2, "
        "status = CASE WHEN status = 'open' THEN 'acknowledged' ELSE status END, "
        "resolution_note = coalesce($3, resolution_note) "
        "WHERE id = $1 AND status IN ('open', 'dispatched') AND acknowledged_at IS NULL "
        "RETURNING id",
        alert_id,
        actor,
        note,
    )
    if done is not None:
        await log(conn, alert_id, "acknowledged", actor)
    return done is not None


async def resolve(
    conn: asyncpg.Connection,
    alert_id: uuid.UUID,
    *,
    outcome: str,
    actor: str,
    note: str | None,
) -> bool:
    """Close an active alert as ``resolved`` or ``false_alarm``; False when already closed."""
    done = await conn.fetchval(
        "UPDATE telemetry.alerts SET status = $2, resolved_at = now(), resolved_by = $3, "
        "resolution_note = coalesce($4, resolution_note), "
        "acknowledged_at = coalesce(acknowledged_at, now()), "
        "acknowledged_by = coalesce(acknowledged_by, $3) "
        "WHERE id = $1 AND status IN ('open', 'acknowledged', 'dispatched') RETURNING id",
        alert_id,
        outcome,
        actor,
        note,
    )
    if done is not None:
        await log(conn, alert_id, outcome, actor)
        if outcome == "false_alarm":
            await cancel_dispatch(conn, alert_id)
    return done is not None


# A false alarm of a kind that was handed to dispatch stops the dispatch: an outbox row in
# the same transaction, delivered by the relay like the hand-off (dispatch is idempotent on
# the alert, and a cancel that overtakes its hand-off is remembered there).
_CANCEL_DISPATCH = """
WITH cancel AS (
    INSERT INTO telemetry.outbox (alert_id, target, method, path, body, idempotency_key,
        created_at, attempts, next_attempt_at)
    SELECT a.id, 'dispatch', 'POST', '/v1/dispatches/cancel',
           jsonb_build_object('alert_id', a.id, 'reason', 'false_alarm', 'elder_id', a.elder_id,
                              'kind', a.kind, 'raised_at', a.raised_at),
           'cancel:' || a.id, now(), 0, now()
    FROM telemetry.alerts a WHERE a.id = $1 AND a.kind = ANY($2::text[])
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
)
SELECT pg_notify($3, '') FROM cancel
"""


async def cancel_dispatch(conn: asyncpg.Connection, alert_id: uuid.UUID) -> None:
    await conn.execute(_CANCEL_DISPATCH, alert_id, sorted(DISPATCHED_KINDS), OUTBOX_CHANNEL)


async def mark_dispatched(conn: asyncpg.Connection, alert_id: uuid.UUID, *, actor: str) -> bool:
    """Dispatch took the hand-off (the relay's delivery was answered 2xx)."""
    changed = await conn.fetchval(
        "UPDATE telemetry.alerts SET status = 'dispatched', dispatched_at = now() "
        "WHERE id = $1 AND status IN ('open', 'acknowledged') RETURNING id",
        alert_id,
    )
    if changed:
        await log(conn, alert_id, "dispatched", actor)
    return changed is not None


async def escalate(conn: asyncpg.Connection, alert_id: uuid.UUID, *, at: datetime) -> None:
    """Nobody acknowledged in time: one level up, and the step is re-sent on the feed."""
    await conn.execute(
        "UPDATE telemetry.alerts SET escalation_level = escalation_level + 1, "
        "escalated_at = $2 WHERE id = $1",
        alert_id,
        at,
    )
    await log(conn, alert_id, "escalated", "system")


# A device reporting again closes its offline alert (a gateway's closes on its own "online").
_DEVICES_BACK = """
UPDATE telemetry.alerts a SET status = 'resolved', resolved_at = $2, resolved_by = 'system',
    resolution_note = 'device reporting again'
FROM telemetry.device_state s
WHERE a.kind = 'device_offline' AND a.status IN ('open', 'acknowledged', 'dispatched')
  AND a.device_id = s.device_id AND s.last_seen_at >= $1
RETURNING a.id, a.device_id
"""


async def close_offline_of_returned(
    conn: asyncpg.Connection, *, seen_since: datetime, at: datetime
) -> list[str]:
    """Resolve the offline alerts of devices seen since ``seen_since``; their device ids."""
    rows = await conn.fetch(_DEVICES_BACK, seen_since, at)
    for row in rows:
        await log(conn, row["id"], "resolved", "system")
    return [row["device_id"] for row in rows]
