# ruff: noqa: E501  (SQL statements and report lines read better unbroken)
"""Dispatch benchmarks, each as a ratio against a baseline measured in the same run.

1. coverage   bulk service radius of B beds × S stations end to end over HTTP (POST
              /v1/coverage/bulk: the read model query, per-org k-d trees, travel minutes for
              the k nearest, the report's first page) vs a bare SELECT of the same coordinates
              plus the same index query. Target < 2 s, ≤ 2 × bare (B=100 000, S=1 000).
2. assignment V visits × C caregivers for one day, homes within their station's radius:
              ``solver.solve`` (VROOM per station + district insertion) vs the greedy baseline
              on the same matrix (target: ≤ 30 s, ≥ 98 % assigned of the best known, travel ≤
              0.8 × greedy); VROOM's plan mode then re-checks the answer (0 violations).
3. handoff    telemetry hand-off (POST /v1/dispatches to a dispatch server) → offer committed
              (the 201 is sent after the commit), p50/p99 with 1 000 vitals/s written to
              telemetry.events meanwhile; baseline: one-row INSERT + COMMIT under the same load.
4. checkins   handset check-ins/s (POST …/check-in, 16 connections) vs a bare INSERT of a row.

``BENCH_DISPATCH_SCALE`` (default 1.0) scales B, S, V, C and the counts for development runs.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import orjson

from bench.common import (
    Phase,
    database,
    http_request,
    log,
    run_load,
    scratch_dir,
    uvicorn_server,
    write_result,
)
from bench.loadgen import Spec, percentiles
from shared.auth import TokenCodec
from shared.config import Settings

NAME = "dispatch"
JWT_SECRET = "bench-secret-" + "x" * 32
SCALE = float(os.environ.get("BENCH_DISPATCH_SCALE", "1.0"))
BEDS, STATIONS, ORGS = int(100_000 * SCALE), max(10, int(1_000 * SCALE)), max(2, int(50 * SCALE))
VISITS, CAREGIVERS = int(2_000 * SCALE), max(2, int(200 * SCALE))
HANDOFFS = max(20, int(300 * SCALE))
CHECKINS = max(100, int(3_000 * SCALE))
VITALS_RATE = 1_000.0


@dataclass
class Outcome:
    phases: list[Phase]
    summary: list[str]
    path: Path


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


async def _seed_registry(url: str, rng: np.random.Generator) -> dict[str, Any]:
    """B active beds of elders spread over ~Xiamen, S stations over O orgs (COPY)."""
    conn = await asyncpg.connect(url)
    try:
        orgs = [_uuid() for _ in range(ORGS)]
        await conn.copy_records_to_table(
            "orgs",
            schema_name="registry",
            columns=["id", "name", "credit_code", "region", "licences", "created_at"],
            records=[
                (o, f"org{k}", f"BENCH{k:013d}", "350212", "[]", datetime.now(UTC))
                for k, o in enumerate(orgs)
            ],
        )
        st_ll = np.column_stack(
            [24.40 + rng.random(STATIONS) * 0.6, 117.90 + rng.random(STATIONS) * 0.6]
        )
        stations = [
            (_uuid(), orgs[k % ORGS], f"st{k}", float(a), float(b), "urban", datetime.now(UTC))
            for k, (a, b) in enumerate(st_ll)
        ]
        await conn.copy_records_to_table(
            "stations",
            schema_name="registry",
            columns=["id", "org_id", "name", "lat", "lon", "zone", "created_at"],
            records=stations,
        )
        ll = np.column_stack([24.40 + rng.random(BEDS) * 0.6, 117.90 + rng.random(BEDS) * 0.6])
        now = datetime.now(UTC)
        elders, beds = [], []
        for k in range(BEDS):
            e = _uuid()
            elders.append(
                (
                    e,
                    b"x",
                    uuid.uuid4().bytes * 2,
                    "x",
                    "e",
                    datetime(1940, 1, 1).date(),
                    "female",
                    "350212",
                    "350212",
                    "addr",
                    float(ll[k, 0]),
                    float(ll[k, 1]),
                    "urban" if k % 5 else "rural",
                    "with_family",
                    True,
                    now,
                )
            )
            st = stations[k % STATIONS]
            beds.append(
                (
                    _uuid(),
                    e,
                    st[1],
                    st[0],
                    "active",
                    "xm-tongan-family-bed",
                    now.date(),
                    now.date(),
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
                "lat",
                "lon",
                "zone",
                "living_arrangement",
                "lives_at_home",
                "created_at",
            ],
            records=elders,
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
        await _seed_responders(conn, stations)
        await conn.execute("ANALYZE")
        return {"orgs": orgs, "stations": stations, "elders": elders, "beds": beds}
    finally:
        await conn.close()


async def _seed_responders(conn: asyncpg.Connection, stations: list[tuple]) -> None:
    """One on-duty, insured caregiver per station: a hand-off has candidates to offer to."""
    today = datetime.now(UTC).date()
    await conn.copy_records_to_table(
        "staff",
        schema_name="registry",
        columns=[
            "id",
            "org_id",
            "station_id",
            "name",
            "role",
            "phone_enc",
            "phone_masked",
            "certificates",
            "insured_until",
            "on_duty",
            "active",
        ],
        records=[
            (
                _uuid(),
                st[1],
                st[0],
                f"r{k}",
                "caregiver",
                b"\x00",
                "138****0000",
                "[]",
                today + timedelta(days=365),
                True,
                True,
            )
            for k, st in enumerate(stations)
        ],
    )


def _get(port: int, path: str, token: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def _coverage(url: str, port: int, token: str) -> dict[str, Any]:
    """End to end over HTTP: ``POST /v1/coverage/bulk`` for the whole district (every bed is
    computed; the answer carries the counts and the first page of beds outside), best of 3;
    the CSV of every bed once. Bare: the same coordinates by asyncpg plus the same k-d tree
    query, in this process."""
    from scipy.spatial import cKDTree

    from services.dispatch.coverage.spatial import unit_vectors

    async def bare_once() -> float:
        conn = await asyncpg.connect(url)
        try:
            t0 = time.perf_counter()
            b = await conn.fetch(
                "SELECT b.id, b.org_id, e.lat, e.lon FROM registry.beds b JOIN registry.elders e ON e.id = b.elder_id "
                "WHERE b.status = 'active'"
            )
            s = await conn.fetch("SELECT id, org_id, lat, lon FROM registry.stations")
            pts = np.array([(r["lat"], r["lon"]) for r in b])
            spts = np.array([(r["lat"], r["lon"]) for r in s])
            cKDTree(unit_vectors(spts)).query(unit_vectors(pts), k=3)
            return time.perf_counter() - t0
        finally:
            await conn.close()

    ours, bare, report = [], [], {}
    for _ in range(3):
        status, seconds = _post(port, "/v1/coverage/bulk", b"{}", token)
        assert status == 200, status
        ours.append(seconds)
        bare.append(asyncio.run(bare_once()))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(
        "POST",
        "/v1/coverage/bulk?limit=1",
        body=b"{}",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    report = orjson.loads(conn.getresponse().read())
    conn.close()
    t0 = time.perf_counter()
    status, body = _get(port, "/v1/coverage/bulk.csv", token)
    csv_s = time.perf_counter() - t0
    o, bb = min(ours), min(bare)
    return {
        "beds": report["beds"],
        "stations": STATIONS,
        "outside": report["outside"],
        "seconds": round(o, 3),
        "bare_seconds": round(bb, 3),
        "ratio": round(o / bb, 2),
        "csv_seconds": round(csv_s, 3),
        "csv_rows": body.count(b"\n") - 1 if status == 200 else None,
        "target_s": 2.0,
        "target_ratio": 2.0,
        "ok": o < 2.0 and o / bb <= 2.0,
    }


def _assignment() -> dict[str, Any]:
    """A district's day: S = C/10 stations spread over ~50 km, each with its caregivers and
    the visits of its beds — homes within the station's service radius, as the bed rule
    requires (000 篇一: ≤ 15 min). Visits start 08:00–17:00 (± the policy's window slack),
    30 min each; one visit in ten needs a qualification one caregiver in five holds; each
    visit's usual caregiver is one of its station's. Solved the way ``POST /v1/routes/plan``
    solves (``solver.solve``: VROOM per station, then the district insertion pass) against
    the greedy baseline on the same matrix."""
    from services.dispatch import policy as dispatch_policy
    from services.dispatch.coverage.travel import EstimateTravel
    from services.dispatch.routes import solver

    policy = dispatch_policy.load()
    a = policy.assignment
    rng = np.random.default_rng(7)
    n_st = max(1, CAREGIVERS // 10)
    stations = np.column_stack([24.45 + rng.random(n_st) * 0.5, 117.95 + rng.random(n_st) * 0.5])
    home_station = np.arange(VISITS) % n_st
    # uniform over a disc of 2.5 km (≈ 13 min by e-bike with the urban detour factor)
    r, ang = np.sqrt(rng.random(VISITS)) * 0.0225, rng.random(VISITS) * 2 * np.pi
    homes = stations[home_station] + np.column_stack(
        [r * np.cos(ang), r * np.sin(ang) / np.cos(np.radians(stations[home_station, 0]))]
    )
    worker_station = np.arange(CAREGIVERS) % n_st
    pts = np.vstack([stations[worker_station], homes])
    matrix = EstimateTravel(policy).matrix_now(pts, pts, "urban")
    starts = rng.integers(8 * 60, 17 * 60, VISITS)
    skilled_job = rng.random(VISITS) < 0.1
    skilled_worker = rng.random(CAREGIVERS) < 0.2
    staff_of = {s: [k for k in range(CAREGIVERS) if worker_station[k] == s] for s in range(n_st)}
    slack = a.window_slack_minutes
    jobs = [
        solver.Job(
            f"v{k}",
            CAREGIVERS + k,
            30.0,
            (float(starts[k] - slack), float(starts[k] + slack)),
            frozenset({"item:medication"}) if skilled_job[k] else frozenset(),
            preferred=f"c{rng.choice(staff_of[home_station[k]])}",
        )
        for k in range(VISITS)
    ]
    workers = [
        solver.Worker(
            f"c{k}",
            k,
            (480.0, 1080.0),
            (690.0, 810.0),
            30.0,
            12,
            frozenset({"item:medication"}) if skilled_worker[k] else frozenset(),
        )
        for k in range(CAREGIVERS)
    ]
    greedy = solver.greedy(jobs, workers, matrix)
    vroom = solver.solve(
        jobs,
        workers,
        matrix,
        job_group={j.id: int(home_station[k]) for k, j in enumerate(jobs)},
        worker_group={w.id: int(worker_station[k]) for k, w in enumerate(workers)},
        timeout_s=a.solver_timeout_s,
        threads=2,
    )
    checked = solver.check(
        {w: [jobs[int(s.job[1:])] for s in stops] for w, stops in vroom.routes.items()},
        workers,
        matrix,
    )
    best = max(vroom.assigned, greedy.assigned)
    return {
        "visits": VISITS,
        "caregivers": CAREGIVERS,
        "stations": n_st,
        "vroom": {
            "seconds": round(vroom.seconds, 2),
            "assigned": vroom.assigned,
            "travel_minutes": vroom.travel_minutes,
        },
        "greedy": {
            "seconds": round(greedy.seconds, 2),
            "assigned": greedy.assigned,
            "travel_minutes": greedy.travel_minutes,
        },
        "plan_mode_check": {"seconds": round(checked.seconds, 2), "violations": checked.violated},
        "assigned_share": round(vroom.assigned / VISITS, 4),
        "assigned_of_best_known": round(vroom.assigned / best, 4) if best else None,
        "travel_ratio": round(vroom.travel_minutes / greedy.travel_minutes, 3)
        if greedy.travel_minutes
        else None,
        "travel_per_visit_ratio": round(
            (vroom.travel_minutes / vroom.assigned) / (greedy.travel_minutes / greedy.assigned), 3
        )
        if vroom.assigned and greedy.assigned and greedy.travel_minutes
        else None,
        "ok": vroom.seconds <= 30
        and vroom.assigned >= 0.98 * best
        and vroom.travel_minutes <= 0.8 * greedy.travel_minutes
        and checked.violated == 0,
    }


class Vitals(threading.Thread):
    """1 000 vitals/s into telemetry.events (batches every 50 ms), the background load."""

    def __init__(self, url: str, device: str) -> None:
        super().__init__(daemon=True)
        self.url, self.device, self.stop = url, device, threading.Event()
        self.written = 0

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.url)
        names = [
            "received_at",
            "device_id",
            "msg_id",
            "device_ts",
            "gateway_id",
            "event",
            "skew_s",
            "data",
        ]
        n = 0
        while not self.stop.is_set():
            now = datetime.now(UTC)
            rows = []
            for _ in range(int(VITALS_RATE * 0.05)):
                n += 1
                rows.append(
                    (
                        now,
                        self.device,
                        f"bench-{n}",
                        now,
                        "bench-gw",
                        "vitals",
                        0,
                        '{"heart_rate": 70}',
                    )
                )
            try:
                await conn.copy_records_to_table(
                    "events", schema_name="telemetry", columns=names, records=rows
                )
            except Exception as exc:  # the load is a backdrop; report, never stop the benchmark
                log(f"vitals load: {exc}")
                break
            self.written = n
            await asyncio.sleep(0.05)
        await conn.close()


def _post(port: int, path: str, body: bytes, token: str) -> tuple[int, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t0 = time.perf_counter()
    conn.request(
        "POST",
        path,
        body=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status, time.perf_counter() - t0  # seconds, like bench.loadgen


async def _bare_insert_latency(url: str, n: int) -> list[float]:
    conn = await asyncpg.connect(url)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS public.bench_handoff (id uuid PRIMARY KEY, at timestamptz DEFAULT now())"
    )
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await conn.execute("INSERT INTO public.bench_handoff (id) VALUES ($1)", uuid.uuid4())
        out.append(time.perf_counter() - t0)
        await asyncio.sleep(0.02)
    await conn.close()
    return out


def run(opts: Any = None) -> Outcome:
    with scratch_dir("eldercare-bench-dispatch-") as work, database(work) as url:
        return _run(url, work)


def _run(url: str, work: Path) -> Outcome:
    data_dir = work / "data"
    data_dir.mkdir()
    settings = Settings(
        database_url=url, jwt_secret=JWT_SECRET, data_dir=data_dir, pii_key="b", pii_hash_key="b"
    )
    codec = TokenCodec(settings)
    rng = np.random.default_rng(1)
    log(f"seeding {BEDS} beds, {STATIONS} stations")
    seeded = asyncio.run(_seed_registry(url, rng))
    log(f"assignment {VISITS} × {CAREGIVERS}")
    assignment = _assignment()
    env = {
        "ELDERCARE_DATABASE_URL": url,
        "ELDERCARE_DATA_DIR": str(data_dir),
        "ELDERCARE_JWT_SECRET": JWT_SECRET,
        "ELDERCARE_PII_KEY": "b",
        "ELDERCARE_PII_HASH_KEY": "b",
        "ELDERCARE_LOG_LEVEL": "WARNING",
        "ELDERCARE_TELEMETRY_URL": "http://127.0.0.1:9",
    }
    phases: list[Phase] = []
    with uvicorn_server(
        "dispatch", "services.dispatch.app:create_app", env=env, work=work
    ) as server:
        log("coverage")
        coverage = _coverage(url, server.port, codec.issue(role="admin", ttl=3600))
        service = codec.issue(role="service", ttl=3600)
        vitals = Vitals(url, "bench-vitals")
        vitals.start()
        time.sleep(1.0)
        log(f"hand-off latency, {HANDOFFS} alerts at 20/s under {VITALS_RATE:.0f} vitals/s")
        lat = []
        elders = seeded["elders"]
        for k in range(HANDOFFS):
            body = orjson.dumps(
                {
                    "alert_id": str(uuid.uuid4()),
                    "elder_id": str(elders[k * 7 % len(elders)][0]),
                    "kind": "emergency",
                    "raised_at": datetime.now(UTC).isoformat(),
                }
            )
            status, ms = _post(server.port, "/v1/dispatches", body, service)
            if status == 201:
                lat.append(ms)
            time.sleep(0.05)
        bare = asyncio.run(_bare_insert_latency(url, HANDOFFS))
        vitals.stop.set()
        vitals.join(5)
        handoff = {
            "ours_ms": percentiles(lat),
            "bare_insert_ms": percentiles(bare),
            "ok_count": len(lat),
            "p99_target_ms": 25.0,
            "ok": bool(lat) and percentiles(lat)["p99"] < 25.0,
        }
        log(f"check-ins: {CHECKINS} visits")
        visits = asyncio.run(_make_visits(url, seeded, CHECKINS))
        requests = []
        for vid, staff, org, la, lo in visits:
            token = codec.issue(role="caregiver", org=org, staff=staff, ttl=3600)
            body = orjson.dumps({"lat": la, "lon": lo, "at": datetime.now(UTC).isoformat()})
            requests.append(
                http_request("POST", f"/v1/visits/{vid}/check-in", token=token, body=body)
            )
        phase = run_load(
            "dispatch-check-ins",
            server,
            Spec(server.port, requests, 16, "count", shuffle=False),
            work,
        )
        phases.append(phase)
    bare_rate = asyncio.run(_bare_insert_rate(url, CHECKINS))
    checkins = {
        "ours_per_s": round(phase.rps, 1),
        "bare_insert_per_s": round(bare_rate, 1),
        "ratio": round(phase.rps / bare_rate, 3),
        "statuses": phase.load["statuses"],
    }
    figures = {
        "scale": SCALE,
        "coverage": coverage,
        "assignment": assignment,
        "handoff": handoff,
        "checkins": checkins,
    }
    path = write_result(NAME, figures)
    summary = [
        f"coverage {coverage['beds']} beds × {STATIONS} stations: {coverage['seconds']} s = {coverage['ratio']} × bare "
        f"({coverage['bare_seconds']} s), HTTP end to end; target < 2 s and ≤ 2 ×: {'ok' if coverage['ok'] else 'MISSED'}; "
        f"CSV of every bed {coverage['csv_seconds']} s",
        f"assignment {VISITS} visits × {CAREGIVERS} caregivers: VROOM {assignment['vroom']['seconds']} s, "
        f"{assignment['assigned_share']:.1%} assigned, travel {assignment['travel_ratio']} × greedy "
        f"(greedy {assignment['greedy']['assigned']} assigned in {assignment['greedy']['seconds']} s); "
        f"plan mode {assignment['plan_mode_check']['violations']} violations in {assignment['plan_mode_check']['seconds']} s: "
        f"{'ok' if assignment['ok'] else 'MISSED'}",
        f"hand-off → offer committed: p50 {handoff['ours_ms'].get('p50', float('nan')):.1f} ms, "
        f"p99 {handoff['ours_ms'].get('p99', float('nan')):.1f} ms under {VITALS_RATE:.0f} vitals/s "
        f"(bare INSERT+COMMIT p99 {handoff['bare_insert_ms'].get('p99', float('nan')):.1f} ms); target p99 < 25 ms: "
        f"{'ok' if handoff['ok'] else 'MISSED'}",
        f"check-ins: {checkins['ours_per_s']}/s = {checkins['ratio']} × bare INSERT ({checkins['bare_insert_per_s']}/s)",
    ]
    return Outcome(phases, summary, path)


async def _make_visits(url: str, seeded: dict[str, Any], n: int) -> list[tuple]:
    conn = await asyncpg.connect(url)
    try:
        org = seeded["orgs"][0]
        station = next(s for s in seeded["stations"] if s[1] == org)
        staff = []
        for k in range(50):
            sid = uuid.uuid4()
            staff.append(sid)
            await conn.execute(
                "INSERT INTO registry.staff (id, org_id, station_id, name, role, phone_enc, phone_masked, certificates, "
                "on_duty, active) VALUES ($1, $2, $3, $4, 'caregiver', '\\x00', '138****0000', '[]', true, true)",
                sid,
                org,
                station[0],
                f"s{k}",
            )
        beds = [b for b in seeded["beds"] if b[2] == org][:n] or seeded["beds"][:n]
        elders = {e[0]: e for e in seeded["elders"]}
        now = datetime.now(UTC)
        rows, out = [], []
        for k in range(n):
            bed = beds[k % len(beds)]
            vid = uuid.uuid4()
            e = elders[bed[1]]
            s = staff[k % len(staff)]
            rows.append(
                (
                    vid,
                    bed[0],
                    bed[1],
                    org,
                    s,
                    "adhoc",
                    "planned",
                    now - timedelta(hours=1),
                    now,
                    ["meal"],
                    [],
                    False,
                )
            )
            out.append((str(vid), str(s), str(org), e[10], e[11]))
        await conn.copy_records_to_table(
            "visits",
            schema_name="dispatch",
            columns=[
                "id",
                "bed_id",
                "elder_id",
                "org_id",
                "staff_id",
                "kind",
                "status",
                "planned_start",
                "planned_end",
                "items",
                "items_done",
                "late",
            ],
            records=rows,
        )
        return out
    finally:
        await conn.close()


async def _bare_insert_rate(url: str, n: int) -> float:
    pool = await asyncpg.create_pool(url, min_size=16, max_size=16)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS public.bench_checkin (id uuid PRIMARY KEY, lat float8, lon float8, at timestamptz)"
    )
    sem = asyncio.Semaphore(16)

    async def one() -> None:
        async with sem, pool.acquire() as c:
            await c.execute(
                "INSERT INTO public.bench_checkin VALUES ($1, 24.7, 118.1, now())", uuid.uuid4()
            )

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    rate = n / (time.perf_counter() - t0)
    await pool.close()
    return rate
