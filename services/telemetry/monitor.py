"""Time-based rules and housekeeping, run every few seconds by the ingest process.

Silence cannot arrive as a message, so these rules look at ``device_state`` instead: devices
and gateways that missed their heartbeats, elders without daytime motion (inactivity), night
bed exits without return, alerts nobody acknowledged in time (escalation along a finite
chain). Behaviour rules respect VISIT mode; retired devices are ignored, and their open
device alerts closed. With several ingest replicas, one scan runs at a time (advisory lock).

Every scan is set-based: one query per rule finds its candidates (narrowed in SQL: silent
long enough by the wall clock, not already alerted for this silence), the pure rules in
``alerts/rules.py`` decide on them, and ``alerts/lifecycle.py`` writes each kind's raises,
closures and escalations in one statement. A scan costs the same dozen round trips for ten
homes or ten thousand (``python -m bench monitor``).

Reads come first and writes last, so the scan's row locks are held for its writing part
only (ingest raising for the same homes waits on them). Housekeeping (partitions,
retention) is in ``housekeeping.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from services.telemetry.alerts import lifecycle, rules
from services.telemetry.housekeeping import Retention, housekeeping
from shared.config import Settings
from shared.db import plain_url

log = logging.getLogger(__name__)

__all__ = ["Retention", "housekeeping", "run", "scan"]

SCAN_LOCK = 0x7E1E_0001
SCAN_EVERY_S = 10.0
HOUSEKEEPING_EVERY_S = 3600.0
VISIT_MAX = timedelta(hours=4)
ACTIVE = lifecycle.ACTIVE_SQL
DEVICE_KINDS = ("device_offline", "gateway_offline", "low_battery")


def _number(field: str) -> str:
    """An elder's schedule override as float8, or NULL: a malformed value never fails a scan."""
    return (
        f"CASE WHEN jsonb_typeof(es.schedule->'{field}') = 'number' "
        f"THEN (es.schedule->>'{field}')::float8 END"
    )


# Devices and gateways silent for longer than the offline limit, registered and not
# retired, whose silence no alert covers yet: none active, and none raised since the last
# report that was resolved less than the re-alert interval ago.
_SILENT = f"""
SELECT s.device_id, s.gateway_id, s.elder_id, s.last_seen_at,
       s.device_id = s.gateway_id AS is_gateway
FROM telemetry.device_state s
JOIN registry.devices d ON d.device_id = s.device_id AND d.status = 'active'
WHERE s.last_seen_at < $1
  AND NOT EXISTS (
      SELECT 1 FROM telemetry.alerts a
      WHERE a.dedup_key = s.device_id || CASE WHEN s.device_id = s.gateway_id
                THEN ':gateway_offline' ELSE ':device_offline' END
        AND (a.status IN {ACTIVE}
             OR (a.first_event_at > s.last_seen_at
                 AND a.resolved_at > $2::timestamptz - make_interval(secs => $3::float8))))
"""

# Elders whose motion sensors have been still for at least their inactivity limit by the
# wall clock (daytime hours never exceed wall-clock hours, so the pure rule then decides on
# these few), with no active inactivity alert. Stillness counts from the last motion, or
# from the last inactivity alert raised since then: a desk that resolved one (the elder was
# fine) is asked again only after another full inactivity limit of stillness.
_STILL = f"""
SELECT elder_id, last_motion, greatest(last_motion, alerted_at) AS still_since, schedule, visit
FROM (
    SELECT s.elder_id, max(s.last_motion_at) AS last_motion,
           min(es.schedule::text) AS schedule, bool_or(v.elder_id IS NOT NULL) AS visit,
           coalesce(min({_number("inactivity_hours")}), $2) AS hours,
           (SELECT max(a.first_event_at) FROM telemetry.alerts a
            WHERE a.dedup_key = s.elder_id || ':inactivity'
              AND a.first_event_at > max(s.last_motion_at)) AS alerted_at
    FROM telemetry.device_state s
    JOIN registry.devices d ON d.device_id = s.device_id
         AND d.kind = 'motion_sensor' AND d.status = 'active'
    LEFT JOIN telemetry.elder_settings es ON es.elder_id = s.elder_id
    LEFT JOIN telemetry.visit_mode v ON v.elder_id = s.elder_id AND v.since > $3
    WHERE s.elder_id IS NOT NULL
    GROUP BY s.elder_id
    HAVING max(s.last_motion_at) <= $1::timestamptz - make_interval(
        secs => 3600 * coalesce(min({_number("inactivity_hours")}), $2))
) still
WHERE greatest(last_motion, alerted_at) <= $1::timestamptz - make_interval(secs => 3600 * hours)
  AND NOT EXISTS (
      SELECT 1 FROM telemetry.alerts a
      WHERE a.dedup_key = still.elder_id || ':inactivity' AND a.status IN {ACTIVE})
"""

_OUT_OF_BED = f"""
SELECT DISTINCT ON (s.elder_id) s.device_id, s.gateway_id, s.elder_id, s.bed_state_at,
       es.schedule::text AS schedule, v.elder_id IS NOT NULL AS visit
FROM telemetry.device_state s
JOIN registry.devices d ON d.device_id = s.device_id AND d.status = 'active'
LEFT JOIN telemetry.elder_settings es ON es.elder_id = s.elder_id
LEFT JOIN telemetry.visit_mode v ON v.elder_id = s.elder_id AND v.since > $3
WHERE s.bed_state = 'out' AND s.elder_id IS NOT NULL
  AND s.bed_state_at <= $1::timestamptz
                         - make_interval(secs => 60 * coalesce({_number("bed_exit_minutes")}, $2))
  AND NOT EXISTS (
      SELECT 1 FROM telemetry.alerts a
      WHERE a.dedup_key = s.elder_id || ':bed_exit_night'
        AND (a.status IN {ACTIVE} OR a.first_event_at > s.bed_state_at))
ORDER BY s.elder_id, s.bed_state_at
"""

# Open, unacknowledged alerts with steps left in their severity's chain and old enough for
# its first step; the pure rule picks the step each is due for.
_UNANSWERED = """
SELECT a.id, a.severity, a.raised_at, a.escalation_level
FROM telemetry.alerts a
JOIN unnest($1::text[], $2::int[], $3::float8[]) AS c(severity, steps, first_after_s)
     ON c.severity = a.severity
WHERE a.status = 'open' AND a.acknowledged_at IS NULL AND a.escalation_exhausted_at IS NULL
  AND a.escalation_level < c.steps
  AND a.raised_at <= $4::timestamptz - make_interval(secs => c.first_after_s)
"""

# Active alerts whose condition has ended, each with the note it is closed with.
_ENDED = f"""
SELECT a.id, $1 AS note FROM telemetry.alerts a
JOIN registry.devices d ON d.device_id = coalesce(a.device_id, a.gateway_id)
     AND d.status <> 'active'
WHERE a.status IN {ACTIVE} AND a.kind IN {DEVICE_KINDS!r}
UNION ALL
SELECT a.id, $2 FROM telemetry.alerts a
JOIN telemetry.device_state s ON s.device_id = a.device_id
WHERE a.status IN {ACTIVE} AND a.kind IN ('device_offline', 'gateway_offline')
  AND s.last_seen_at > (a.details->>'last_seen_at')::timestamptz
UNION ALL
SELECT a.id, $3 FROM telemetry.alerts a
WHERE a.status IN {ACTIVE} AND a.kind = 'inactivity'
  AND EXISTS (SELECT 1 FROM telemetry.device_state s WHERE s.elder_id = a.elder_id
              AND s.last_motion_at > (a.details->>'last_motion_at')::timestamptz)
UNION ALL
SELECT a.id, $4 FROM telemetry.alerts a
WHERE a.status IN {ACTIVE} AND a.kind = 'bed_exit_night'
  AND EXISTS (SELECT 1 FROM telemetry.device_state s WHERE s.elder_id = a.elder_id
              AND s.bed_state = 'in' AND s.bed_state_at > (a.details->>'out_since')::timestamptz)
"""
# A retired device's alerts close as retired, whatever else holds for them.
_NOTES = (
    lifecycle.NOTE_DEVICE_RETIRED,
    lifecycle.NOTE_DEVICE_BACK,
    lifecycle.NOTE_MOTION_AGAIN,
    lifecycle.NOTE_BACK_IN_BED,
)


def _with_schedule(cfg: rules.Config, schedule: str | None) -> rules.Config:
    """``cfg`` with an elder's schedule overrides (JSON from ``elder_settings.schedule``)."""
    if not schedule:
        return cfg
    overrides = orjson.loads(schedule)
    fields: dict = {}
    for key in ("day_start", "day_end", "night_start", "night_end"):
        if overrides.get(key):
            fields[key] = rules.parse_time(overrides[key])
    for key in ("inactivity_hours", "bed_exit_minutes"):
        if overrides.get(key) is not None:
            fields[key] = type(getattr(cfg, key))(overrides[key])
    return rules.Config(**{**cfg.__dict__, **fields}) if fields else cfg


class _Schedules:
    """Per-scan cache: many elders share a schedule (most have none)."""

    def __init__(self, cfg: rules.Config) -> None:
        self.cfg = cfg
        self._seen: dict[str | None, rules.Config] = {}

    def __call__(self, schedule: str | None) -> rules.Config:
        if schedule not in self._seen:
            self._seen[schedule] = _with_schedule(self.cfg, schedule)
        return self._seen[schedule]


async def scan(
    conn: asyncpg.Connection, now: datetime, cfg: rules.Config | None = None
) -> list[str]:
    """One pass of every time-based rule; returns what it raised, closed or escalated (for
    logs and tests). The caller owns the transaction."""
    cfg = cfg or rules.defaults()
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SCAN_LOCK):
        return []
    schedules = _Schedules(cfg)
    silence = timedelta(seconds=cfg.heartbeat_interval_s * cfg.offline_after_missed)
    visits_since = now - VISIT_MAX  # a forgotten check-out must not silence a home for good
    chains = {sev: chain for sev, chain in cfg.escalation.items() if chain}

    ended = await conn.fetch(_ENDED, *_NOTES)
    silent = await conn.fetch(_SILENT, now - silence, now, float(cfg.offline_realert_after_s))
    still = await conn.fetch(_STILL, now, cfg.inactivity_hours, visits_since)
    out_of_bed = await conn.fetch(_OUT_OF_BED, now, float(cfg.bed_exit_minutes), visits_since)
    unanswered = await conn.fetch(
        _UNANSWERED,
        list(chains),
        [len(chain) for chain in chains.values()],
        [float(chain[0].after_s) for chain in chains.values()],
        now,
    )

    closing: dict[str, list] = defaultdict(list)
    seen_ids: set = set()
    for row in sorted(ended, key=lambda r: _NOTES.index(r["note"])):
        if row["id"] not in seen_ids:
            seen_ids.add(row["id"])
            closing[row["note"]].append(row["id"])

    offline: dict[bool, list[lifecycle.NewAlert]] = {True: [], False: []}
    for row in silent:
        offline[row["is_gateway"]].append(
            lifecycle.NewAlert(
                subject=row["device_id"],
                since=row["last_seen_at"],
                elder_id=row["elder_id"],
                gateway_id=row["gateway_id"],
                device_id=row["device_id"],
                details={
                    "last_seen_at": row["last_seen_at"].isoformat(),
                    "missed_heartbeats": cfg.offline_after_missed,
                },
            )
        )

    inactive = []
    for row in still:
        elder_cfg = schedules(row["schedule"])
        if rules.suppressed("inactivity", row["visit"]):
            continue
        if rules.inactive(row["still_since"], now, elder_cfg):
            inactive.append(
                lifecycle.NewAlert(
                    subject=str(row["elder_id"]),
                    since=row["still_since"],
                    elder_id=row["elder_id"],
                    details={
                        "last_motion_at": row["last_motion"].isoformat(),
                        "hours": elder_cfg.inactivity_hours,
                        "daytime_hours_still": round(
                            rules.daytime_hours(row["last_motion"], now, elder_cfg), 2
                        ),
                    },
                )
            )

    bed_exits = []
    for row in out_of_bed:
        elder_cfg = schedules(row["schedule"])
        if rules.suppressed("bed_exit_night", row["visit"]):
            continue
        if rules.bed_exit_unreturned("out", row["bed_state_at"], now, elder_cfg):
            bed_exits.append(
                lifecycle.NewAlert(
                    subject=str(row["elder_id"]),
                    since=row["bed_state_at"],
                    elder_id=row["elder_id"],
                    gateway_id=row["gateway_id"],
                    device_id=row["device_id"],
                    details={"out_since": row["bed_state_at"].isoformat()},
                )
            )

    steps = []
    for row in unanswered:
        severity, level = row["severity"], row["escalation_level"]
        step = rules.next_escalation(severity, row["raised_at"], level, now, cfg)
        if step is not None:
            final = rules.escalation_final(severity, level + 1, cfg)
            steps.append(
                lifecycle.Step(
                    alert_id=row["id"],
                    level=level,
                    detail={
                        "step": level + 1,
                        "of": len(chains[severity]),
                        "notify": list(step.notify),
                        "final": final,
                    },
                    final=final,
                )
            )

    # Writes: one statement per kind of change.
    done: list[str] = []
    for note, ids in closing.items():
        for c in await lifecycle.close_many(conn, ids, at=now, note=note):
            done.append(f"closed:{c.kind}:{c.subject}")
    realert = float(cfg.offline_realert_after_s)
    for kind, alerts, shared in (
        ("device_offline", offline[False], False),
        ("gateway_offline", offline[True], True),
    ):
        raised = await lifecycle.raise_many(
            conn,
            alerts,
            kind=kind,
            severity="warning",
            at=now,
            realert_after_s=realert,
            shared_with_ingest=shared,
        )
        done += [f"{kind}:{subject}" for subject in raised]
    for kind, alerts in (("inactivity", inactive), ("bed_exit_night", bed_exits)):
        raised = await lifecycle.raise_many(conn, alerts, kind=kind, severity="warning", at=now)
        done += [f"{kind}:{subject}" for subject in raised]
    for alert_id, level in await lifecycle.escalate_many(conn, steps, at=now):
        done.append(f"escalated:{alert_id}:{level}")
    return done


async def run(settings: Settings, stop: asyncio.Event) -> None:
    conn = await asyncpg.connect(plain_url(settings.database_url))
    retention = Retention.from_settings(settings)
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
                    # its own short transactions: a long one would hold locks ingest waits on
                    log.info("housekeeping: %s", await housekeeping(conn, now, retention))
                    last_housekeeping = loop.time()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The class and SQLSTATE only: a PostgreSQL message can quote row values.
                log.warning(
                    "monitor pass failed (%s sqlstate=%s); next pass in %ss",
                    type(exc).__name__,
                    getattr(exc, "sqlstate", None),
                    SCAN_EVERY_S,
                )
                if conn.is_closed():
                    conn = await asyncpg.connect(plain_url(settings.database_url))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SCAN_EVERY_S)
    finally:
        await conn.close()
