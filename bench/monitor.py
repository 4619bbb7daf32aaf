"""Monitor benchmark: one scan of every time-based rule over N homes (default 10 000), as a
ratio against a bare set-based query of the same rows in the same run.

The district is built in SQL (``generate_series``), not through the API: what is measured
is the scan, not the set-up. Each home has a gateway, a motion sensor, a bed sensor and an
emergency button (four ``device_state`` rows), one in ten a schedule override. At the scan's
instant (15:00 in Shanghai, daytime) most homes are healthy; 2 % are silent (four offline
alerts each), 3 % have been still for six daytime hours (inactivity), 1 % left their bed at
03:00 (a night bed exit), 1 % have an unacknowledged emergency three minutes old (escalation).

Phases, each timed alone, medians of ``REPEATS``:
- ``bare``: the baseline, one SELECT of every ``device_state`` row joined to its device and
  the elder's settings — reading the rows the scan judges, once, without judging them;
  also ``bare count``, the same join aggregated on the server (nothing sent), a floor;
- ``first scan``: the scan that finds all of the above and raises, escalates and logs them
  (rolled back after each repeat, so every repeat does the same work);
- ``steady scan``: the scan every 10 s after that, when everything found is already alerted.
The target is "well inside the 10 s interval".
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import Phase, database, log, scratch_dir, write_result
from bench.registry import Options
from services.telemetry.alerts import rules
from services.telemetry.monitor import SCAN_EVERY_S, scan

NAME = "monitor"
HOMES = 10_000
REPEATS = 5

_ROWS = """
FROM telemetry.device_state s
JOIN registry.devices d ON d.device_id = s.device_id
LEFT JOIN telemetry.elder_settings es ON es.elder_id = s.elder_id
"""
_BARE = (
    "SELECT s.device_id, s.gateway_id, s.elder_id, s.last_seen_at, s.last_motion_at, "
    "s.bed_state, s.bed_state_at, d.kind, d.status, es.schedule " + _ROWS
)
# The same rows read and joined on the server only, nothing sent: the floor of any scan.
_BARE_COUNT = "SELECT count(*), max(s.last_seen_at), max(es.schedule::text) " + _ROWS


@dataclass
class Outcome:
    name: str
    phases: list[Phase]
    summary: list[str]
    figures: dict[str, Any]
    path: Path


def scan_instant() -> datetime:
    """The latest 15:00 in Shanghai (daytime, after a night) that is already past: alerts
    the scan raises get the real time as ``raised_at``, so none of them is old enough to
    escalate in the steady scans, which makes every run do the same work."""
    local_now = datetime.now(rules.SHANGHAI)
    at = local_now.replace(hour=15, minute=0, second=0, microsecond=0)
    if at > local_now:
        at -= timedelta(days=1)
    return at.astimezone(UTC)


async def build(conn: asyncpg.Connection, homes: int, now: datetime) -> None:
    """``homes`` homes in SQL: elders, devices, device state, settings, open alerts."""
    night = now.astimezone(rules.SHANGHAI).replace(hour=3, minute=0).astimezone(UTC)
    await conn.execute(
        """
        INSERT INTO registry.elders (id, id_number_enc, id_number_hash, id_number_masked, name,
            birth_date, gender, hukou_region, residence_region, address, zone,
            living_arrangement, lives_at_home)
        SELECT md5('elder' || i)::uuid, '\\x00', decode(md5('id' || i), 'hex'),
               '3502**********0000', 'elder ' || i, date '1940-01-01' + i % 3000,
               CASE WHEN i % 2 = 0 THEN 'male' ELSE 'female' END, '350212', '350212',
               'bench', 'urban', 'with_family', true
        FROM generate_series(1, $1) i
        """,
        homes,
    )
    await conn.execute(
        """
        INSERT INTO registry.devices (id, device_id, gateway_id, kind, elder_id, status)
        SELECT md5(k.prefix || i)::uuid, k.prefix || '-' || i, 'gw-' || i, k.kind,
               md5('elder' || i)::uuid, 'active'
        FROM generate_series(1, $1) i,
             (VALUES ('gw', 'gateway'), ('pir', 'motion_sensor'), ('bed', 'bed_sensor'),
                     ('btn', 'emergency_button')) AS k(prefix, kind)
        """,
        homes,
    )
    # i % 100: 0–1 silent home, 2–4 still, 5 out of bed since 03:00; the rest healthy
    await conn.execute(
        """
        INSERT INTO telemetry.device_state (device_id, gateway_id, elder_id, last_seen_at,
            last_heartbeat_at, battery, last_motion_at, bed_state, bed_state_at, clock_skewed)
        SELECT k.prefix || '-' || i, 'gw-' || i, md5('elder' || i)::uuid,
               CASE WHEN i % 100 < 2 THEN t.now - interval '1 hour'
                    ELSE t.now - interval '20 s' END,
               t.now - interval '20 s', 80,
               CASE WHEN k.prefix <> 'pir' THEN NULL
                    WHEN i % 100 BETWEEN 2 AND 4 THEN t.now - interval '6 hours'
                    ELSE t.now - interval '10 minutes' END,
               CASE WHEN k.prefix <> 'bed' THEN NULL
                    WHEN i % 100 = 5 THEN 'out' ELSE 'in' END,
               CASE WHEN k.prefix <> 'bed' THEN NULL
                    WHEN i % 100 = 5 THEN t.night ELSE t.now - interval '8 hours' END,
               false
        FROM generate_series(1, $1) i, (VALUES ('gw'), ('pir'), ('bed'), ('btn')) AS k(prefix),
             (SELECT $2::timestamptz AS now, $3::timestamptz AS night) t
        """,
        homes,
        now,
        night,
    )
    await conn.execute(
        """
        INSERT INTO telemetry.elder_settings (elder_id, thresholds, schedule)
        SELECT md5('elder' || i)::uuid, '{}',
               '{"day_start": "07:30", "inactivity_hours": 5}'::jsonb
        FROM generate_series(10, $1, 10) i
        """,
        homes,
    )
    await conn.execute(
        """
        INSERT INTO telemetry.alerts (id, elder_id, gateway_id, device_id, kind, severity,
            status, dedup_key, occurrences, first_event_at, last_event_at, raised_at,
            escalation_level, details)
        SELECT md5('alert' || i)::uuid, md5('elder' || i)::uuid, 'gw-' || i, 'btn-' || i,
               'emergency', 'critical', 'open', md5('elder' || i)::uuid || ':emergency', 1,
               t.now - interval '3 minutes', t.now - interval '3 minutes',
               t.now - interval '200 s', 0, '{}'
        FROM generate_series(1, $1) i, (SELECT $2::timestamptz AS now) t WHERE i % 100 = 6
        """,
        homes,
        now,
    )
    await conn.execute("ANALYZE")


async def timed(conn: asyncpg.Connection, work, *, rollback: bool) -> tuple[float, Any]:
    tx = conn.transaction()
    await tx.start()
    started = time.perf_counter()
    try:
        result = await work()
        elapsed = time.perf_counter() - started
    finally:
        if rollback:
            await tx.rollback()
        else:
            await tx.commit()
    return elapsed, result


async def measure(url: str, homes: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        now = scan_instant()
        log(f"building {homes:,} homes ({homes * 4:,} device_state rows) in SQL")
        started = time.perf_counter()
        await build(conn, homes, now)
        log(f"built in {time.perf_counter() - started:.1f} s")

        bare, bare_count, first, steady = [], [], [], []
        rows = 0
        for _ in range(REPEATS):
            elapsed, result = await timed(conn, lambda: conn.fetch(_BARE), rollback=True)
            bare.append(elapsed)
            rows = len(result)
            elapsed, _ = await timed(conn, lambda: conn.fetch(_BARE_COUNT), rollback=True)
            bare_count.append(elapsed)
        found: list[str] = []
        for _ in range(REPEATS):
            elapsed, found = await timed(conn, lambda: scan(conn, now), rollback=True)
            first.append(elapsed)
        # the real first scan, kept: what follows is the steady state
        await timed(conn, lambda: scan(conn, now), rollback=False)
        later: list[str] = []
        for i in range(REPEATS):
            at = now + timedelta(seconds=SCAN_EVERY_S * (i + 1))
            elapsed, later = await timed(conn, lambda at=at: scan(conn, at), rollback=True)
            steady.append(elapsed)
        kinds: dict[str, int] = {}
        for item in found:
            kind = item.split(":", 1)[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        return {
            "homes": homes,
            "device_state_rows": rows,
            "bare_s": statistics.median(bare),
            "bare_count_s": statistics.median(bare_count),
            "first_scan_s": statistics.median(first),
            "steady_scan_s": statistics.median(steady),
            "first_scan_changes": kinds,
            "steady_scan_changes": len(later),
            "samples": {
                "bare_s": bare,
                "bare_count_s": bare_count,
                "first_scan_s": first,
                "steady_scan_s": steady,
            },
        }
    finally:
        await conn.close()


def run(opts: Options, homes: int = HOMES) -> Outcome:
    with scratch_dir("eldercare-bench-monitor-") as work:
        log("starting PostgreSQL and migrating")
        with database(work) as url:
            figures = asyncio.run(measure(url, homes))
    bare, first, steady = figures["bare_s"], figures["first_scan_s"], figures["steady_scan_s"]
    floor = figures["bare_count_s"]
    figures["first_scan_ratio"] = round(first / bare, 2)
    figures["steady_scan_ratio"] = round(steady / bare, 2)
    figures["first_scan_ratio_to_count"] = round(first / floor, 2)
    figures["steady_scan_ratio_to_count"] = round(steady / floor, 2)
    figures["interval_share_first"] = round(first / SCAN_EVERY_S, 4)
    changes = ", ".join(f"{n:,} {k}" for k, n in sorted(figures["first_scan_changes"].items()))
    summary = [
        f"{homes:,} homes, {figures['device_state_rows']:,} device_state rows",
        f"bare SELECT of the same rows: {bare * 1000:,.1f} ms"
        f" (the same join counted on the server: {floor * 1000:,.1f} ms)",
        f"first scan ({changes}): {first * 1000:,.1f} ms = {first / bare:.2f} × bare"
        f" ({first / floor:.2f} × count; {first / SCAN_EVERY_S:.1%} of the"
        f" {SCAN_EVERY_S:.0f} s interval)",
        f"steady scan ({figures['steady_scan_changes']} changes): {steady * 1000:,.1f} ms"
        f" = {steady / bare:.2f} × bare ({steady / floor:.2f} × count)",
    ]
    path = write_result(
        NAME,
        {"options": {"homes": homes, "repeats": REPEATS}, "figures": figures, "summary": summary},
    )
    return Outcome(NAME, [], summary, figures, path)
