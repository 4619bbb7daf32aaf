"""Subsidy monthly-run benchmark: a district of N elders (default 100 000) with a realistic
mix of categories, levels, beds and modifications under the 同安区 policy, run for one
month — facts loaded, every elder evaluated, decision records, lines, postings and entries
written, committed — against two baselines measured in the same run:

- a bare ``SELECT`` of the same facts (the fact queries alone, rows fetched, nothing built);
- a ``COPY`` of the same rows the run wrote (decisions, lines, postings, entries) into
  tables of the same shape without indexes or triggers.

It also times an unchanged re-run (the idempotent path) and, with ``BENCH_SUBSIDY_SCALE``
(e.g. ``100000,1000000``), several sizes; the 1 000 000-elder figure is measured when that
size is among them, otherwise extrapolated linearly from the largest (the output says so).

The benchmark writes registry tables directly with COPY (to populate fast); product code
never does. ``BENCH_SUBSIDY_ELDERS`` sets N for a quick run at reduced scale.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import database, log, scratch_dir, write_result
from shared.config import Settings
from shared.db import plain_url

NAME = "subsidy"
MONTH = date(2025, 6, 1)
TARGET_S = 10.0
REGION = "350212"
ORGS = 20


@dataclass
class Outcome:
    name: str
    phases: list
    summary: list[str]
    figures: dict[str, Any]
    path: Path


def _sizes() -> list[int]:
    if os.environ.get("BENCH_SUBSIDY_SCALE"):
        return [int(x) for x in os.environ["BENCH_SUBSIDY_SCALE"].split(",")]
    if os.environ.get("BENCH_SUBSIDY_ELDERS"):
        return [int(os.environ["BENCH_SUBSIDY_ELDERS"])]
    # the target size, and a million measured rather than extrapolated (about 3 minutes)
    return [100_000, 1_000_000]


def run(opts: Any = None) -> Outcome:
    sizes = _sizes()
    results = []
    with scratch_dir("eldercare-bench-subsidy-") as work:
        for n in sizes:
            log(f"{n:,} elders: starting PostgreSQL and migrating")
            with database(work / f"n{n}") as url:
                results.append(asyncio.run(_measure(url, n)))
    figures, summary = _report(results)
    path = write_result(NAME, {"sizes": results, "figures": figures, "summary": summary})
    return Outcome(NAME, [], summary, figures, path)


async def _measure(url: str, n: int) -> dict[str, Any]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        t0 = time.perf_counter()
        counts = await populate(conn, n, seed=20250601)
        populate_s = time.perf_counter() - t0
        log(f"populated {counts} in {populate_s:.1f} s")
        await conn.execute("ANALYZE")
        select_s = await bare_select(conn)
    finally:
        await conn.close()
    run_s, summary = await monthly_run(url)
    log(
        f"run: {run_s:.2f} s ({summary.written:,} decisions, {summary.postings:,} postings, "
        f"{summary.notes[-1]})"
    )
    rerun_s, again = await monthly_run(url)
    log(f"unchanged re-run: {rerun_s:.2f} s ({again.written} decisions written)")
    conn = await asyncpg.connect(plain_url(url))
    try:
        rows, copy_s = await copy_same_rows(conn)
    finally:
        await conn.close()
    log(f"bare select {select_s:.2f} s, COPY of {rows:,} rows {copy_s:.2f} s")
    return {
        "elders": n,
        "facts": counts,
        "populate_s": round(populate_s, 3),
        "run_s": round(run_s, 3),
        "rerun_s": round(rerun_s, 3),
        "select_s": round(select_s, 3),
        "copy_s": round(copy_s, 3),
        "rows_written": rows,
        "decisions": summary.written,
        "postings": summary.postings,
        "rerun_decisions": again.written,
        "peak_rss_mb": float(summary.notes[-1].split("=")[1]),
        "total_fen": summary.total_fen,
    }


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


async def monthly_run(url: str) -> tuple[float, Any]:
    from services.subsidy.policies import service as policies
    from services.subsidy.runs.models import Run
    from services.subsidy.runs.worker import run_claimed
    from shared.db import create_engine, create_sessionmaker

    settings = Settings(database_url=url, log_json=False)
    engine = create_engine(url, pool_size=2, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker.begin() as session:
            await policies.sync_bundled(session)
            run_row = Run(
                month=MONTH, region=REGION, status="running", requested_by="bench", notes=[]
            )
            session.add(run_row)
            await session.flush()
            run_id = run_row.id
        peak = [rss_mb()]

        def progress(done: int, total: int) -> None:
            peak[0] = max(peak[0], rss_mb())

        t0 = time.perf_counter()
        summary = await run_claimed(
            sessionmaker, settings, run_id, MONTH, REGION, "bench", progress
        )
        elapsed = time.perf_counter() - t0
        summary.notes.append(f"peak_rss_mb={max(peak[0], rss_mb()):.0f}")
        if summary is None:
            raise RuntimeError("the monthly run failed (see the log)")
        return elapsed, summary
    finally:
        await engine.dispose()


async def bare_select(conn: asyncpg.Connection) -> float:
    """The fact queries the run issues, rows fetched and dropped (best of 3)."""
    from services.subsidy.facts.service import _params, _statements

    stmts = _statements("region")
    values = {
        "region": REGION,
        "start": MONTH,
        "end": date(2025, 6, 30),
        "grants_from": date(1995, 1, 1),
        "since": MONTH,
    }
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for name, (sql, names, fixed) in stmts.items():
            if name == "visits" and not await conn.fetchval(
                "SELECT to_regclass('dispatch.verified_visits')"
            ):
                continue
            await conn.fetch(sql, *_params(names, fixed, values))
        best = min(best, time.perf_counter() - t0)
    return best


async def copy_same_rows(conn: asyncpg.Connection) -> tuple[int, float]:
    """COPY the rows the run wrote into same-shaped tables without indexes or triggers."""
    tables = ["decisions", "decision_lines", "ledger_postings", "ledger_entries"]
    buffers = {}
    total = 0
    for t in tables:
        buf = io.BytesIO()
        await conn.copy_from_query(f"SELECT * FROM subsidy.{t}", output=buf, format="binary")
        buffers[t] = buf
        total += await conn.fetchval(f"SELECT count(*) FROM subsidy.{t}")
        await conn.execute(f"CREATE TABLE bench_copy_{t} (LIKE subsidy.{t})")
    t0 = time.perf_counter()
    async with conn.transaction():
        for t in tables:
            buffers[t].seek(0)
            await conn.copy_to_table(f"bench_copy_{t}", source=buffers[t], format="binary")
    return total, time.perf_counter() - t0


async def populate(conn: asyncpg.Connection, n: int, *, seed: int) -> dict[str, int]:
    """N elders of 同安区 with a realistic mix, written with COPY."""
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    orgs = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(ORGS)]
    await conn.copy_records_to_table(
        "orgs",
        schema_name="registry",
        columns=["id", "name", "credit_code", "region", "licences", "created_at"],
        records=[
            (o, f"机构{i}", f"91350212MA{i:07d}X", REGION, "[]", now) for i, o in enumerate(orgs)
        ],
    )
    stations = [uuid.uuid5(o, "station") for o in orgs]
    await conn.copy_records_to_table(
        "stations",
        schema_name="registry",
        columns=["id", "org_id", "name", "region", "lat", "lon", "zone", "created_at"],
        records=[
            (s, o, "站", REGION, 24.73, 118.15, "urban", now)
            for s, o in zip(stations, orgs, strict=True)
        ],
    )
    elders, assessments, categories, beds, events, mods = [], [], [], [], [], []
    history = []  # every elder's registration, and 1 % who moved (half of them this month)
    arrangements = (
        ["with_family"] * 6 + ["couple"] * 3 + ["alone"] * 2 + ["with_disabled_dependant"]
    )
    for i in range(n):
        eid = uuid.UUID(int=rnd.getrandbits(128))
        birth = date(1925, 1, 1) + timedelta(days=rnd.randrange(0, 365 * 41))
        arrangement = rnd.choice(arrangements)
        deceased = MONTH + timedelta(days=rnd.randrange(0, 30)) if rnd.random() < 0.004 else None
        place = REGION
        history.append((uuid.uuid4(), eid, REGION, REGION, birth, "registered", "bench", now))
        if rnd.random() < 0.01:
            moved = (
                MONTH + timedelta(days=rnd.randrange(1, 30))
                if rnd.random() < 0.5
                else date(2024, 1, 1) + timedelta(days=rnd.randrange(0, 500))
            )
            # out of the district, or within it
            away = "350203" if rnd.random() < 0.5 else f"{REGION}001"
            history.append((uuid.uuid4(), eid, away, away, moved, "move", "bench", now))
            place = away
        elders.append(
            (
                eid,
                b"x",
                eid.bytes + eid.bytes,
                "3502**********0000",
                f"老人{i}",
                birth,
                "female",
                place,
                place,
                "同安区",
                "urban",
                arrangement,
                rnd.random() > 0.03,
                deceased,
                now,
            )
        )
        level = None
        if rnd.random() < 0.7:
            level = rnd.choices([0, 1, 2, 3, 4], weights=[50, 20, 12, 10, 8])[0]
            on = date(2024, 1, 1) + timedelta(days=rnd.randrange(0, 500))
            assessments.append(
                (
                    uuid.uuid4(),
                    eid,
                    "third_party",
                    level,
                    level,
                    "[]",
                    rnd.random() < 0.1,
                    False,
                    0,
                    on,
                    on + timedelta(days=730),
                    "评估机构",
                    now,
                )
            )
        r = rnd.random()
        if r < 0.19:
            code = ["extreme_poverty", "subsistence_allowance", "low_income", "entitled_group"][
                0 if r < 0.03 else 1 if r < 0.11 else 2 if r < 0.17 else 3
            ]
            ends = MONTH + timedelta(days=rnd.randrange(0, 60)) if rnd.random() < 0.05 else None
            categories.append((uuid.uuid4(), eid, code, date(2019, 1, 1), ends, None, False, now))
        if rnd.random() < 0.10:
            categories.append(
                (
                    uuid.uuid4(),
                    eid,
                    "disabled",
                    date(2018, 1, 1),
                    None,
                    rnd.randint(1, 4),
                    rnd.random() < 0.4,
                    now,
                )
            )
        if level and level >= 1 and arrangement != "alone" and rnd.random() < 0.5:
            bid = uuid.UUID(int=rnd.getrandbits(128))
            k = rnd.randrange(ORGS)
            start = (
                MONTH + timedelta(days=rnd.randrange(0, 29))
                if rnd.random() < 0.1
                else date(2024, 1, 1) + timedelta(days=rnd.randrange(0, 500))
            )
            beds.append(
                (
                    bid,
                    eid,
                    orgs[k],
                    stations[k],
                    "active",
                    "xm-tongan-family-bed",
                    start,
                    start,
                    now,
                )
            )
            events.append((uuid.uuid4(), bid, None, "active", start, "bench", now))
            if rnd.random() < 0.2:
                for kind in rnd.sample(["aging_adaptation", "smart"], rnd.randint(1, 2)):
                    done = (
                        max(start, MONTH) + timedelta(days=rnd.randrange(0, 20))
                        if rnd.random() < 0.3
                        else start
                    )
                    mods.append(
                        (
                            uuid.uuid4(),
                            bid,
                            kind,
                            "改造",
                            rnd.randrange(50_000, 400_000),
                            done,
                            done + timedelta(days=365),
                            now,
                        )
                    )
    await conn.copy_records_to_table(
        "elders",
        schema_name="registry",
        columns=[
            "id",
            "id_number_enc",
            "id_number_hash",
            "id_number_masked",
            "name",
            "birth_date",
            "gender",
            "hukou_region",
            "residence_region",
            "address",
            "zone",
            "living_arrangement",
            "lives_at_home",
            "deceased_on",
            "created_at",
        ],
        records=elders,
    )
    await conn.copy_records_to_table(
        "residence_history",
        schema_name="registry",
        columns=[
            "id",
            "elder_id",
            "hukou_region",
            "residence_region",
            "valid_from",
            "kind",
            "recorded_by",
            "recorded_at",
        ],
        records=history,
    )
    await conn.copy_records_to_table(
        "assessments",
        schema_name="registry",
        columns=[
            "id",
            "elder_id",
            "source",
            "base_level",
            "level",
            "adjustments",
            "dementia",
            "coma",
            "care_risk_events_30d",
            "assessed_on",
            "valid_until",
            "assessor",
            "created_at",
        ],
        records=assessments,
    )
    await conn.copy_records_to_table(
        "categories",
        schema_name="registry",
        columns=[
            "id",
            "elder_id",
            "code",
            "valid_from",
            "valid_to",
            "grade",
            "receives_nursing_subsidy",
            "created_at",
        ],
        records=categories,
    )
    await conn.copy_records_to_table(
        "beds",
        schema_name="registry",
        columns=[
            "id",
            "elder_id",
            "org_id",
            "station_id",
            "status",
            "policy_code",
            "applied_on",
            "started_on",
            "created_at",
        ],
        records=beds,
    )
    await conn.copy_records_to_table(
        "bed_events",
        schema_name="registry",
        columns=["id", "bed_id", "from_status", "to_status", "effective_on", "actor", "created_at"],
        records=events,
    )
    await conn.copy_records_to_table(
        "modifications",
        schema_name="registry",
        columns=[
            "id",
            "bed_id",
            "kind",
            "item",
            "cost_fen",
            "done_on",
            "warranty_until",
            "created_at",
        ],
        records=mods,
    )
    return {
        "elders": len(elders),
        "assessments": len(assessments),
        "categories": len(categories),
        "beds": len(beds),
        "modifications": len(mods),
    }


def _report(results: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    lines = [
        f"{'elders':>9} {'run s':>7} {'elders/s':>9} {'× SELECT':>9} {'× COPY':>7} "
        f"{'re-run s':>9} {'rows written':>13}"
    ]
    for r in results:
        lines.append(
            f"{r['elders']:>9,} {r['run_s']:>7.2f} {r['elders'] / r['run_s']:>9,.0f} "
            f"{r['run_s'] / r['select_s']:>9.1f} {r['run_s'] / r['copy_s']:>7.1f} "
            f"{r['rerun_s']:>9.2f} "
            f"{r['rows_written']:>13,}"
        )
    biggest = max(results, key=lambda r: r["elders"])
    per_elder = biggest["run_s"] / biggest["elders"]
    million = per_elder * 1_000_000
    at_100k = next((r for r in results if r["elders"] == 100_000), None)
    figures = {
        "run_s_100k": at_100k["run_s"] if at_100k else None,
        "target_s_100k": TARGET_S,
        "million_s": round(million, 1),
        "million_basis": (
            "measured"
            if biggest["elders"] == 1_000_000
            else f"extrapolated linearly from the measured {biggest['elders']:,}-elder run"
        ),
        "ratio_select": round(biggest["run_s"] / biggest["select_s"], 2),
        "ratio_copy": round(biggest["run_s"] / biggest["copy_s"], 2),
    }
    lines.append("")
    if at_100k:
        verdict = "meets" if at_100k["run_s"] < TARGET_S else "misses"
        lines.append(
            f"100 000 elders: {at_100k['run_s']:.2f} s — {verdict} the < {TARGET_S:.0f} s target"
        )
    lines.append(f"1 000 000 elders: ≈ {million:.0f} s ({figures['million_basis']})")
    return figures, lines
