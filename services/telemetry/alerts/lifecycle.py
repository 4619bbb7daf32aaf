"""Every change of an alert's state, in one place: raise (or count a repeat), acknowledge,
hand to dispatch, escalate, resolve or close as a false alarm — each step logged in
``alert_log`` (the audit trail and the SSE feed) in the same transaction.

Plain asyncpg on a connection inside the caller's transaction: the ingest worker, the
monitor and the relay call it on their own connections; the REST app on the request's
(``shared.uow`` gives the session, ``raw()`` its asyncpg connection). The monitor's
functions (``raise_many``, ``close_many``, ``escalate_many``) change any number of alerts
in one statement each — alerts, log rows and the NOTIFY together — so a scan costs the same
few round trips for ten homes or ten thousand.

System closures store a stable code in ``resolution_note`` (``NOTE_*``); the API renders
it in the reader's language (``schemas.SYSTEM_NOTES``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from services.telemetry.alerts import rules
from shared.db import new_id

NOTIFY_CHANNEL = "telemetry_alerts"
OUTBOX_CHANNEL = "telemetry_outbox"
DISPATCHED_KINDS = frozenset({"emergency", "fall"})
# A possible emergency the ingest could not read or attribute to a device is still sent to
# a person when its home is known (the gateway's elder): dispatch offers it like the others.
DISPATCHED_WHEN_ATTRIBUTED = frozenset({"unprocessed_emergency", "unknown_device_emergency"})


def handed_to_dispatch(kind: str, elder_id: uuid.UUID | None) -> bool:
    return kind in DISPATCHED_KINDS or (kind in DISPATCHED_WHEN_ATTRIBUTED and elder_id is not None)


ACTIVE_SQL = "('open', 'acknowledged', 'dispatched')"

NOTE_DEVICE_BACK = "device_reporting_again"
NOTE_MOTION_AGAIN = "motion_again"
NOTE_BACK_IN_BED = "back_in_bed"
NOTE_DEVICE_RETIRED = "device_retired"
# Advisory locks are slots in a shared table: a scan takes at most this many at once.
LOCK_BATCH = 500


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
        handed_to_dispatch(kind, elder_id),
        NOTIFY_CHANNEL,
        OUTBOX_CHANNEL,
    )
    return Raised(alert_id, created=True)


_CLOSE = f"""
WITH closed AS (
    UPDATE telemetry.alerts SET status = 'resolved', resolved_at = $2, resolved_by = $3,
        resolution_note = $4
    WHERE __where__ AND status IN {ACTIVE_SQL}
    RETURNING *
), entry AS (
    INSERT INTO telemetry.alert_log (alert_id, action, actor, at, elder_id, snapshot)
    SELECT c.id, 'resolved', $3, now(), c.elder_id, to_jsonb(c) FROM closed c
    RETURNING seq
)
SELECT (SELECT coalesce(array_agg(c.id || ' ' || c.dedup_key), '{{}}') FROM closed c) AS closed,
       (SELECT pg_notify($5, max(seq)::text) FROM entry HAVING count(*) > 0)
"""
_CLOSE_KEY = _CLOSE.replace("__where__", "dedup_key = $1")
_CLOSE_IDS = _CLOSE.replace("__where__", "id = ANY($1::uuid[])")


@dataclass(frozen=True)
class Closed:
    alert_id: uuid.UUID
    subject: str
    kind: str


def _closed(rows: list[str]) -> list[Closed]:
    out = []
    for row in rows:
        alert_id, key = row.split(" ", 1)
        subject, kind = key.rsplit(":", 1)
        out.append(Closed(uuid.UUID(alert_id), subject, kind))
    return out


async def close_active(
    conn: asyncpg.Connection, *, subject: str, kind: str, actor: str, note: str
) -> int:
    """Resolve the active alert of (subject, kind), e.g. when a gateway comes back online."""
    rows = await conn.fetchval(
        _CLOSE_KEY, rules.dedup_key(subject, kind), datetime.now(UTC), actor, note, NOTIFY_CHANNEL
    )
    return len(rows)


async def close_many(
    conn: asyncpg.Connection,
    alert_ids: Sequence[uuid.UUID],
    *,
    at: datetime,
    note: str,
    actor: str = "system",
) -> list[Closed]:
    """Resolve every still-active alert of ``alert_ids`` in one statement (log rows and the
    NOTIFY included); those already closed meanwhile are left as they are."""
    if not alert_ids:
        return []
    rows = await conn.fetchval(_CLOSE_IDS, list(alert_ids), at, actor, note, NOTIFY_CHANNEL)
    return _closed(rows)


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


# A false alarm of an alert that was handed to dispatch stops the dispatch: an outbox row in
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
    FROM telemetry.alerts a WHERE a.id = $1
      AND EXISTS (SELECT 1 FROM telemetry.outbox o WHERE o.idempotency_key = 'alert:' || a.id)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
)
SELECT pg_notify($2, '') FROM cancel
"""


async def cancel_dispatch(conn: asyncpg.Connection, alert_id: uuid.UUID) -> None:
    await conn.execute(_CANCEL_DISPATCH, alert_id, OUTBOX_CHANNEL)


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


_ESCALATE = """
WITH step AS (
    SELECT * FROM unnest($1::uuid[], $2::int[], $3::jsonb[], $4::bool[])
        AS t(id, level, detail, final)
), stepped AS (
    UPDATE telemetry.alerts a SET escalation_level = s.level + 1, escalated_at = $5::timestamptz,
        escalation_exhausted_at = CASE WHEN s.final THEN $5::timestamptz END
    FROM step s
    -- still where the caller saw it: a desk that acknowledged meanwhile wins
    WHERE a.id = s.id AND a.escalation_level = s.level AND a.status = 'open'
      AND a.acknowledged_at IS NULL AND a.escalation_exhausted_at IS NULL
    RETURNING a.id, a.elder_id, a.escalation_level, to_jsonb(a) AS snapshot, s.detail
), entry AS (
    INSERT INTO telemetry.alert_log (alert_id, action, actor, at, elder_id, snapshot, detail)
    SELECT id, 'escalated', 'system', now(), elder_id, snapshot, detail FROM stepped
    RETURNING seq
)
SELECT (SELECT coalesce(array_agg(id || ' ' || escalation_level), '{}') FROM stepped),
       (SELECT pg_notify($6, max(seq)::text) FROM entry HAVING count(*) > 0)
"""


@dataclass(frozen=True)
class Step:
    """One escalation to take: ``alert_id`` at ``level`` steps goes one up."""

    alert_id: uuid.UUID
    level: int
    detail: dict[str, Any]
    final: bool


async def escalate_many(
    conn: asyncpg.Connection, steps: Sequence[Step], *, at: datetime
) -> list[tuple[uuid.UUID, int]]:
    """Take each step in one statement; the (alert, new level) of those taken. The last
    step of a chain marks the alert ``escalation_exhausted_at``: nothing follows it."""
    if not steps:
        return []
    rows = await conn.fetchval(
        _ESCALATE,
        [s.alert_id for s in steps],
        [s.level for s in steps],
        [orjson.dumps(s.detail).decode() for s in steps],
        [s.final for s in steps],
        at,
        NOTIFY_CHANNEL,
    )
    taken = [row.split(" ") for row in rows]
    return [(uuid.UUID(alert_id), int(level)) for alert_id, level in taken]


@dataclass(frozen=True)
class NewAlert:
    """One alert for ``raise_many``. ``since`` is when the condition began (the silence's
    last report, the last motion, the bed exit): an alert of the same key raised after it
    already covers this condition, even once resolved — a desk is not asked twice."""

    subject: str
    since: datetime | None = None
    elder_id: uuid.UUID | None = None
    gateway_id: str | None = None
    device_id: str | None = None
    value: float | None = None
    details: dict[str, Any] | None = None


_RAISE_MANY = f"""
WITH input AS (
    SELECT t.*, t.subject || ':' || $9 AS key
    FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::float8[],
                $7::jsonb[], $8::timestamptz[])
        AS t(id, subject, elder_id, gateway_id, device_id, value, details, since)
), fresh AS (
    SELECT i.* FROM input i
    WHERE NOT EXISTS (
        SELECT 1 FROM telemetry.alerts a
        WHERE a.dedup_key = i.key
          AND (a.status IN {ACTIVE_SQL}
               OR (i.since IS NOT NULL AND a.first_event_at > i.since
                   AND ($12::float8 IS NULL
                        OR a.resolved_at > $11::timestamptz - make_interval(secs => $12::float8)))))
), alert AS (
    INSERT INTO telemetry.alerts (id, elder_id, gateway_id, device_id, kind, severity, status,
        dedup_key, occurrences, first_event_at, last_event_at, raised_at, escalation_level,
        value, details)
    SELECT id, elder_id, gateway_id, device_id, $9, $10, 'open', key, 1, $11, $11, now(), 0,
           value, details
    FROM fresh
    RETURNING *
), entry AS (
    INSERT INTO telemetry.alert_log (alert_id, action, actor, at, elder_id, snapshot)
    SELECT a.id, 'raised', 'system', now(), a.elder_id, to_jsonb(a) FROM alert a
    RETURNING seq
)
SELECT (SELECT coalesce(array_agg(subject), '{{}}') FROM fresh),
       (SELECT pg_notify($13, max(seq)::text) FROM entry HAVING count(*) > 0)
"""


async def raise_many(
    conn: asyncpg.Connection,
    alerts: Sequence[NewAlert],
    *,
    kind: str,
    severity: str,
    at: datetime,
    realert_after_s: float | None = None,
    shared_with_ingest: bool = False,
) -> list[str]:
    """Raise every alert not already covered, in one statement; the subjects raised.

    Covered: an active alert of the same (subject, kind), or one raised after the
    condition's ``since`` — resolved less than ``realert_after_s`` ago, or at all when that
    is None. Kinds the ingest also raises (``shared_with_ingest``: gateway offline) first
    take the per-key advisory lock ``raise_alert`` takes, without waiting: a key locked by
    the ingest right now is left for the next scan, and never raised twice."""
    if not alerts:
        return []
    if shared_with_ingest:
        alerts = list(alerts)[:LOCK_BATCH]
        locked = set(
            await conn.fetchval(
                "SELECT coalesce(array_agg(k ORDER BY k), '{}') FROM unnest($1::text[]) k "
                "WHERE pg_try_advisory_xact_lock(hashtextextended(k, 0))",
                sorted({rules.dedup_key(a.subject, kind) for a in alerts}),
            )
        )
        alerts = [a for a in alerts if rules.dedup_key(a.subject, kind) in locked]
        if not alerts:
            return []
    return await conn.fetchval(
        _RAISE_MANY,
        [new_id() for _ in alerts],
        [a.subject for a in alerts],
        [a.elder_id for a in alerts],
        [a.gateway_id for a in alerts],
        [a.device_id for a in alerts],
        [a.value for a in alerts],
        [orjson.dumps(a.details or {}).decode() for a in alerts],
        [a.since for a in alerts],
        kind,
        severity,
        at,
        realert_after_s,
        NOTIFY_CHANNEL,
    )
