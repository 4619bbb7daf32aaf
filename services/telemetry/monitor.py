"""Time-based rules and housekeeping, run every few seconds by the ingest process.

Silence cannot arrive as a message, so these rules look at ``device_state`` instead: devices
and gateways that missed their heartbeats, elders without daytime motion (inactivity), night
bed exits without return, alerts nobody acknowledged in time (escalation). Behaviour rules
respect VISIT mode. With several ingest replicas, one scan runs at a time (advisory lock).
Housekeeping keeps monthly partitions ahead, drops those past retention, and prunes the
dedup and breach tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from services.telemetry.alerts import lifecycle, rules
from shared.config import Settings
from shared.db import plain_url

log = logging.getLogger(__name__)

SCAN_LOCK = 0x7E1E_0001
SCAN_EVERY_S = 10.0
HOUSEKEEPING_EVERY_S = 3600.0
DEDUP_KEEP = timedelta(days=7)
BREACH_KEEP = timedelta(days=1)
VISIT_MAX = timedelta(hours=4)


async def scan(
    conn: asyncpg.Connection, now: datetime, cfg: rules.Config | None = None
) -> list[str]:
    """One pass of every time-based rule; returns what it raised or closed (for logs/tests).
    The caller owns the transaction."""
    cfg = cfg or rules.defaults()
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SCAN_LOCK):
        return []
    done: list[str] = []
    done += await _offline(conn, now, cfg)
    # A visit nobody checked out of stops suppressing after VISIT_MAX (a forgotten
    # check-out must not silence a home for good).
    visits = {
        r["elder_id"]
        for r in await conn.fetch(
            "SELECT elder_id FROM telemetry.visit_mode WHERE since > $1", now - VISIT_MAX
        )
    }
    done += await _inactivity(conn, now, cfg, visits)
    done += await _bed_exit(conn, now, cfg, visits)
    done += await _escalate(conn, now, cfg)
    return done


_SILENT = """
SELECT s.device_id, s.gateway_id, s.elder_id, s.last_seen_at,
       CASE WHEN s.device_id = s.gateway_id THEN 'gateway_offline' ELSE 'device_offline' END
           AS kind
FROM telemetry.device_state s
WHERE s.last_seen_at < $1
  AND NOT EXISTS (
      SELECT 1 FROM telemetry.alerts a
      WHERE a.dedup_key = s.device_id || ':' || CASE WHEN s.device_id = s.gateway_id
            THEN 'gateway_offline' ELSE 'device_offline' END
        AND a.status IN ('open', 'acknowledged', 'dispatched'))
"""


async def _offline(conn, now, cfg) -> list[str]:
    """Set-based: one query finds the newly silent, one closes the alerts of the returned."""
    done = []
    silence = timedelta(seconds=cfg.heartbeat_interval_s * cfg.offline_after_missed)
    for row in await conn.fetch(_SILENT, now - silence):
        r = await lifecycle.raise_alert(
            conn,
            kind=row["kind"],
            severity="warning",
            subject=row["device_id"],
            at=now,
            elder_id=row["elder_id"],
            gateway_id=row["gateway_id"],
            device_id=row["device_id"],
            window_s=10 * 365 * 24 * 3600,
            details={
                "last_seen_at": row["last_seen_at"].isoformat(),
                "missed_heartbeats": cfg.offline_after_missed,
            },
        )
        if r.created:
            done.append(f"{row['kind']}:{row['device_id']}")
    for device_id in await lifecycle.close_offline_of_returned(
        conn, seen_since=now - silence, at=now
    ):
        done.append(f"closed:device_offline:{device_id}")
    return done


def _with_schedule(cfg: rules.Config, schedule: str | None) -> rules.Config:
    """``cfg`` with an elder's schedule overrides (JSON from ``elder_settings.schedule``)."""
    if not schedule:
        return cfg
    overrides = orjson.loads(schedule)
    fields: dict = {}
    for key in ("day_start", "day_end", "night_start", "night_end"):
        if key in overrides:
            fields[key] = rules.parse_time(overrides[key])
    for key in ("inactivity_hours", "bed_exit_minutes"):
        if key in overrides:
            fields[key] = type(getattr(cfg, key))(overrides[key])
    return rules.Config(**{**cfg.__dict__, **fields}) if fields else cfg


async def _inactivity(conn, now, cfg, visits) -> list[str]:
    done = []
    rows = await conn.fetch(
        "SELECT s.elder_id, max(s.last_motion_at) AS last_motion, "
        "max(es.schedule::text) AS schedule "
        "FROM telemetry.device_state s JOIN registry.devices d USING (device_id) "
        "LEFT JOIN telemetry.elder_settings es ON es.elder_id = s.elder_id "
        "WHERE d.kind = 'motion_sensor' AND s.elder_id IS NOT NULL GROUP BY s.elder_id"
    )
    for row in rows:
        elder_cfg = _with_schedule(cfg, row["schedule"])
        if rules.inactive(row["last_motion"], now, elder_cfg):
            if rules.suppressed("inactivity", row["elder_id"] in visits):
                continue
            r = await lifecycle.raise_alert(
                conn,
                kind="inactivity",
                severity="warning",
                subject=str(row["elder_id"]),
                at=now,
                elder_id=row["elder_id"],
                window_s=24 * 3600,
                details={
                    "last_motion_at": row["last_motion"] and row["last_motion"].isoformat(),
                    "hours": elder_cfg.inactivity_hours,
                },
            )
            if r.created:
                done.append(f"inactivity:{row['elder_id']}")
        elif (
            row["last_motion"]
            and now - row["last_motion"] < timedelta(minutes=5)
            and await lifecycle.close_active(
                conn,
                subject=str(row["elder_id"]),
                kind="inactivity",
                actor="system",
                note="motion again",
            )
        ):
            done.append(f"closed:inactivity:{row['elder_id']}")
    return done


async def _bed_exit(conn, now, cfg, visits) -> list[str]:
    done = []
    rows = await conn.fetch(
        "SELECT s.device_id, s.gateway_id, s.elder_id, s.bed_state, s.bed_state_at, "
        "es.schedule::text AS schedule FROM telemetry.device_state s "
        "LEFT JOIN telemetry.elder_settings es ON es.elder_id = s.elder_id "
        "WHERE s.bed_state IS NOT NULL AND s.elder_id IS NOT NULL"
    )
    for row in rows:
        elder_cfg = _with_schedule(cfg, row["schedule"])
        if rules.bed_exit_unreturned(row["bed_state"], row["bed_state_at"], now, elder_cfg):
            if rules.suppressed("bed_exit_night", row["elder_id"] in visits):
                continue
            r = await lifecycle.raise_alert(
                conn,
                kind="bed_exit_night",
                severity="warning",
                subject=str(row["elder_id"]),
                at=now,
                elder_id=row["elder_id"],
                gateway_id=row["gateway_id"],
                device_id=row["device_id"],
                window_s=12 * 3600,
                details={"out_since": row["bed_state_at"].isoformat()},
            )
            if r.created:
                done.append(f"bed_exit_night:{row['elder_id']}")
        elif row["bed_state"] == "in" and await lifecycle.close_active(
            conn,
            subject=str(row["elder_id"]),
            kind="bed_exit_night",
            actor="system",
            note="back in bed",
        ):
            done.append(f"closed:bed_exit_night:{row['elder_id']}")
    return done


async def _escalate(conn, now, cfg) -> list[str]:
    done = []
    rows = await conn.fetch(
        "SELECT id, severity, raised_at, escalation_level FROM telemetry.alerts "
        "WHERE status = 'open' AND acknowledged_at IS NULL FOR UPDATE SKIP LOCKED"
    )
    for row in rows:
        if rules.escalation_due(
            row["severity"], row["raised_at"], row["escalation_level"], now, cfg
        ):
            await lifecycle.escalate(conn, row["id"], at=now)
            done.append(f"escalated:{row['id']}:{row['escalation_level'] + 1}")
    return done


async def housekeeping(conn: asyncpg.Connection, now: datetime, retention_days: int) -> dict:
    made = await conn.fetchval("SELECT telemetry.ensure_partitions($1, 3)", now)
    dropped = await conn.fetchval(
        "SELECT telemetry.drop_partitions_before($1)", now - timedelta(days=retention_days)
    )
    pruned = await conn.execute(
        "DELETE FROM telemetry.seen WHERE received_at < $1", now - DEDUP_KEEP
    )
    await conn.execute("DELETE FROM telemetry.vital_breaches WHERE at < $1", now - BREACH_KEEP)
    return {"partitions_made": made, "partitions_dropped": dropped, "seen_pruned": pruned}


async def run(settings: Settings, stop: asyncio.Event) -> None:
    conn = await asyncpg.connect(plain_url(settings.database_url))
    last_housekeeping = 0.0
    loop = asyncio.get_running_loop()
    try:
        while not stop.is_set():
            try:
                now = datetime.now(UTC)
                async with conn.transaction():
                    done = await scan(conn, now)
                if done:
                    log.info("monitor: %s", ", ".join(done[:20]))
                if loop.time() - last_housekeeping > HOUSEKEEPING_EVERY_S:
                    async with conn.transaction():
                        log.info(
                            "housekeeping: %s",
                            await housekeeping(conn, now, settings.telemetry_retention_days),
                        )
                    last_housekeeping = loop.time()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.exception("monitor pass failed; next pass in %ss", SCAN_EVERY_S)
                if conn.is_closed():
                    conn = await asyncpg.connect(plain_url(settings.database_url))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SCAN_EVERY_S)
    finally:
        await conn.close()
