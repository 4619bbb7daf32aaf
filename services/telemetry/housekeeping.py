"""Housekeeping: monthly event partitions ahead and behind, and the retention of everything
else telemetry accumulates (README, "Retention"; figures in ``shared/config.py``).

- events: monthly partitions, dropped whole once past ``telemetry_retention_days``;
- dead letters: ``dead_letter_retention_days`` after they arrived;
- outbox: delivered hand-offs ``outbox_retention_days`` after delivery (pending ones stay
  until delivered: they are promises);
- alert log: the steps of alerts closed more than ``alert_log_retention_days`` ago, whole
  histories only; an active alert's history is never pruned, and an SSE client can resume
  from any position younger than the window (older steps of closed alerts may be gone);
- device state: rows of devices retired (or no longer registered) more than
  ``device_state_retention_days`` ago; an active device's row is never pruned — it is the
  offline rule's memory;
- message de-duplication (``seen``) and vital breaches: a week and a day.

Every deletion runs in chunks, each chunk its own short transaction: one long DELETE would
hold its locks and keep its dead rows from vacuum for the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from shared.config import Settings

DEDUP_KEEP = timedelta(days=7)
BREACH_KEEP = timedelta(days=1)
CHUNK = 5000


@dataclass(frozen=True)
class Retention:
    events_days: int = 400
    dead_letter_days: int = 30
    outbox_days: int = 7
    alert_log_days: int = 400
    device_state_days: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(
            events_days=settings.telemetry_retention_days,
            dead_letter_days=settings.dead_letter_retention_days,
            outbox_days=settings.outbox_retention_days,
            alert_log_days=settings.alert_log_retention_days,
            device_state_days=settings.device_state_retention_days,
        )


# Each statement deletes at most $2 rows older than $1 and is repeated until it deletes
# fewer: chunks by ctid, so every table is pruned the same way whatever its key.
_PRUNE = {
    "seen_pruned": """
        DELETE FROM telemetry.seen WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM telemetry.seen WHERE received_at < $1 LIMIT $2))""",
    "breaches_pruned": """
        DELETE FROM telemetry.vital_breaches WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM telemetry.vital_breaches WHERE at < $1 LIMIT $2))""",
    "dead_letters_pruned": """
        DELETE FROM telemetry.dead_letters WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM telemetry.dead_letters WHERE received_at < $1 LIMIT $2))""",
    "outbox_pruned": """
        DELETE FROM telemetry.outbox WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM telemetry.outbox WHERE delivered_at < $1 LIMIT $2))""",
    # Closed before the cutoff means every step is older than it: histories go whole.
    "alert_log_pruned": """
        DELETE FROM telemetry.alert_log WHERE ctid = ANY(ARRAY(
            SELECT l.ctid FROM telemetry.alert_log l
            JOIN telemetry.alerts a ON a.id = l.alert_id
            WHERE l.at < $1 AND a.status IN ('resolved', 'false_alarm')
              AND a.resolved_at < $1
            LIMIT $2))""",
    "device_state_pruned": """
        DELETE FROM telemetry.device_state WHERE ctid = ANY(ARRAY(
            SELECT s.ctid FROM telemetry.device_state s
            LEFT JOIN registry.devices d ON d.device_id = s.device_id
            WHERE (d.device_id IS NULL OR d.status <> 'active')
              AND coalesce(d.retired_at, s.last_seen_at) < $1
            LIMIT $2))""",
}


async def _prune(conn: asyncpg.Connection, sql: str, cutoff: datetime, chunk: int) -> int:
    total = 0
    while True:
        async with conn.transaction():
            status = await conn.execute(sql, cutoff, chunk)
        deleted = int(status.rsplit(" ", 1)[-1])
        total += deleted
        if deleted < chunk:
            return total


async def housekeeping(
    conn: asyncpg.Connection,
    now: datetime,
    retention: Retention | None = None,
    *,
    chunk: int = CHUNK,
) -> dict[str, int]:
    """One pass; how many partitions were made and dropped and rows pruned, by table."""
    retention = retention or Retention()
    async with conn.transaction():
        made = await conn.fetchval("SELECT telemetry.ensure_partitions($1, 3)", now)
    async with conn.transaction():
        dropped = await conn.fetchval(
            "SELECT telemetry.drop_partitions_before($1)",
            now - timedelta(days=retention.events_days),
        )
    cutoffs = {
        "seen_pruned": now - DEDUP_KEEP,
        "breaches_pruned": now - BREACH_KEEP,
        "dead_letters_pruned": now - timedelta(days=retention.dead_letter_days),
        "outbox_pruned": now - timedelta(days=retention.outbox_days),
        "alert_log_pruned": now - timedelta(days=retention.alert_log_days),
        "device_state_pruned": now - timedelta(days=retention.device_state_days),
    }
    result = {"partitions_made": made, "partitions_dropped": dropped}
    for name, sql in _PRUNE.items():
        result[name] = await _prune(conn, sql, cutoffs[name], chunk)
    return result
