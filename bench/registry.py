"""Registry REST benchmark: reads, latency at a fixed load, and creates, each against a bare
Starlette + asyncpg baseline (``bench.baseline_app``) measured in the same run.

Phases, one server at a time (the load generator is the only other busy process):

1. registry creates (seeds the elders the read phases fetch)
2. baseline creates (a plain INSERT of the same columns)
3. baseline read saturation, 64 connections
4. baseline latency at a fixed offered rate = ½ × (3)
5. registry read saturation, 64 connections
6. registry latency at the same offered rate (and, if the registry cannot sustain it, at half
   of the registry's own maximum — informative only)
"""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench.common import (
    Phase,
    Server,
    check,
    database,
    http_request,
    log,
    run_load,
    scratch_dir,
    uvicorn_server,
    write_result,
)
from bench.loadgen import Spec
from shared.auth import TokenCodec
from shared.config import Settings
from shared.pii import id_check_char

NAME = "registry"
JWT_SECRET = "bench-secret-" + "x" * 32

READ_TARGET = 0.70  # registry reads/s ÷ bare reads/s
P99_TARGET_MS = 20.0  # registry p99 at half the baseline's maximum rate

SATURATION_CONNECTIONS = 64
CREATE_CONNECTIONS = 16
ELDERS = 2000
WARMUP_S = 1.5


@dataclass(frozen=True)
class Options:
    duration: float = 8.0
    elders: int = ELDERS


@dataclass
class Outcome:
    name: str
    phases: list[Phase]
    summary: list[str]
    figures: dict[str, Any]
    path: Path


def id_number(seq: int, *, born_from: date, region: str = "350212") -> str:
    """A valid, unique-per-``seq`` 18-character ID number (1 000 per birth date)."""
    body = f"{region}{born_from + timedelta(days=seq // 1000):%Y%m%d}{seq % 1000:03d}"
    return body + id_check_char(body)


def elder_bodies(count: int, *, born_from: date) -> list[bytes]:
    """JSON bodies for POST /v1/elders, shaped like ``tests.factories.elder_body()``."""
    zones = ("urban", "rural")
    arrangements = ("alone", "couple", "with_family", "with_disabled_dependant")
    return [
        orjson.dumps(
            {
                "id_number": id_number(i, born_from=born_from),
                "name": "陈阿婆",
                "phone": f"138{i % 10**8:08d}",
                "hukou_region": "350212",
                "address": f"厦门市同安区大同街道某路{i + 1}号",
                "lat": 24.7236,
                "lon": 118.1520,
                "zone": zones[i % 2],
                "living_arrangement": arrangements[i % 4],
            }
        )
        for i in range(count)
    ]


async def _elder_ids(url: str) -> list[uuid.UUID]:
    conn = await asyncpg.connect(url)
    try:
        return [row["id"] for row in await conn.fetch("SELECT id FROM registry.elders")]
    finally:
        await conn.close()


def create_phase(
    name: str, server: Server, token: str, bodies: list[bytes], work: Path, *, warmup: int = 50
) -> Phase:
    """Warm up with ``warmup`` creates, then time the rest, all at 16 connections."""
    requests = [http_request("POST", "/v1/elders", token=token, body=b) for b in bodies]
    check(server, "POST", "/v1/elders", token=token, body=bodies[0], expect=201)
    run_load(
        f"{name}-warmup",
        server,
        Spec(server.port, requests[1 : warmup + 1], CREATE_CONNECTIONS, "count", shuffle=False),
        work,
    )
    return run_load(
        name,
        server,
        Spec(server.port, requests[warmup + 1 :], CREATE_CONNECTIONS, "count", shuffle=False),
        work,
    )


def read_requests(token: str, ids: list[uuid.UUID]) -> list[bytes]:
    return [http_request("GET", f"/v1/elders/{i}", token=token) for i in ids]


def read_saturation(server: Server, requests: list[bytes], work: Path, opts: Options) -> Phase:
    log(f"{server.name}: read saturation, {opts.duration:g} s")
    spec = Spec(
        server.port,
        requests,
        SATURATION_CONNECTIONS,
        "closed",
        duration=opts.duration,
        warmup=WARMUP_S,
    )
    return run_load(f"{server.name}-read-saturation", server, spec, work)


def read_latency(
    name: str, server: Server, requests: list[bytes], work: Path, opts: Options, rate: float
) -> Phase:
    log(f"{server.name}: latency at {rate:.0f} req/s, {opts.duration:g} s")
    spec = Spec(
        server.port,
        requests,
        SATURATION_CONNECTIONS,
        "open",
        rate=rate,
        duration=opts.duration,
        warmup=WARMUP_S,
    )
    return run_load(name, server, spec, work)


def run(opts: Options) -> Outcome:
    with scratch_dir("eldercare-bench-") as work:
        log("starting PostgreSQL and migrating")
        with database(work) as url:
            return _run(url, work, opts)


def _run(url: str, work: Path, opts: Options) -> Outcome:
    data_dir = work / "data"
    data_dir.mkdir()
    token = TokenCodec(Settings(jwt_secret=JWT_SECRET, data_dir=data_dir)).issue(
        role="admin", ttl=6 * 3600
    )
    registry_env = {
        "ELDERCARE_DATABASE_URL": url,
        "ELDERCARE_DATA_DIR": str(data_dir),
        "ELDERCARE_JWT_SECRET": JWT_SECRET,
        "ELDERCARE_PII_KEY": "bench",
        "ELDERCARE_PII_HASH_KEY": "bench",
        "ELDERCARE_LOG_LEVEL": "WARNING",
    }
    registry_app = "services.registry.app:create_app"
    baseline_env = {"BENCH_DATABASE_URL": url}
    baseline_app = "bench.baseline_app:create_app"
    warm = 50
    registry_bodies = elder_bodies(opts.elders + warm + 1, born_from=date(1940, 1, 1))
    baseline_bodies = elder_bodies(opts.elders + warm + 1, born_from=date(1930, 1, 1))

    with uvicorn_server("registry", registry_app, env=registry_env, work=work) as server:
        log(f"registry: creating {opts.elders} elders, {CREATE_CONNECTIONS} connections")
        registry_create = create_phase(
            "registry-create", server, token, registry_bodies, work, warmup=warm
        )
    ids = asyncio.run(_elder_ids(url))
    reads = read_requests(token, ids)

    with uvicorn_server("bare", baseline_app, env=baseline_env, work=work) as server:
        log(f"bare: inserting {opts.elders} elders, {CREATE_CONNECTIONS} connections")
        bare_create = create_phase("bare-create", server, token, baseline_bodies, work, warmup=warm)
        check(server, "GET", f"/v1/elders/{ids[0]}", token=token)
        bare_read = read_saturation(server, reads, work, opts)
        rate = bare_read.rps / 2
        bare_latency = read_latency("bare-read-latency", server, reads, work, opts, rate)

    own_latency: Phase | None = None
    with uvicorn_server("registry", registry_app, env=registry_env, work=work) as server:
        check(server, "GET", f"/v1/elders/{ids[0]}", token=token)
        registry_read = read_saturation(server, reads, work, opts)
        registry_latency = read_latency("registry-read-latency", server, reads, work, opts, rate)
        if registry_read.rps / 2 < rate * 0.9:
            # Informative only: the registry cannot sustain the baseline's half-load, so also
            # show its latency at half of its own maximum.
            own_latency = read_latency(
                "registry-latency-own-half",
                server,
                reads,
                work,
                opts,
                registry_read.rps / 2,
            )

    phases = [
        bare_read,
        registry_read,
        bare_latency,
        registry_latency,
        *([own_latency] if own_latency else []),
        bare_create,
        registry_create,
    ]
    read_ratio = registry_read.rps / bare_read.rps
    create_ratio = registry_create.rps / bare_create.rps
    p99_ratio = registry_latency.p99 / bare_latency.p99
    figures: dict[str, Any] = {
        "read_ratio": round(read_ratio, 3),
        "read_target": READ_TARGET,
        "read_ok": read_ratio >= READ_TARGET,
        "registry_read_rps": round(registry_read.rps, 1),
        "bare_read_rps": round(bare_read.rps, 1),
        "latency_offered_rps": round(rate, 1),
        "registry_latency_ms": registry_latency.load["latency_ms"],
        "bare_latency_ms": bare_latency.load["latency_ms"],
        "latency_p99_ratio": round(p99_ratio, 3),
        "p99_target_ms": P99_TARGET_MS,
        "p99_ok": registry_latency.p99 < P99_TARGET_MS,
        "registry_create_rps": round(registry_create.rps, 1),
        "bare_create_rps": round(bare_create.rps, 1),
        "create_ratio": round(create_ratio, 3),
        "registry_cpu_us_per_read": round(registry_read.cpu_us_per_request, 1),
        "bare_cpu_us_per_read": round(bare_read.cpu_us_per_request, 1),
    }
    summary = [
        f"reads: registry {registry_read.rps:,.0f} req/s vs bare {bare_read.rps:,.0f} req/s"
        f" = ratio {read_ratio:.2f} (target >= {READ_TARGET:.2f})"
        f" {'OK' if figures['read_ok'] else 'MISSED'}",
        f"latency @ {rate:,.0f} req/s: p50 {registry_latency.p50:.1f} ms"
        f" p99 {registry_latency.p99:.1f} ms (target p99 < {P99_TARGET_MS:g} ms)"
        f" {'OK' if figures['p99_ok'] else 'MISSED'}"
        f" — bare p50 {bare_latency.p50:.1f} ms p99 {bare_latency.p99:.1f} ms,"
        f" p99 ratio {p99_ratio:.2f}",
        f"creates: registry {registry_create.rps:,.0f}/s vs bare insert {bare_create.rps:,.0f}/s"
        f" = ratio {create_ratio:.2f}",
        f"server CPU per read: registry {registry_read.cpu_us_per_request:,.0f} µs"
        f" vs bare {bare_read.cpu_us_per_request:,.0f} µs",
    ]
    for phase in (bare_read, registry_read):
        if phase.server_cpu_share < 0.85:
            summary.append(
                f"warning: {phase.name} server used only {phase.server_cpu_share:.0%} of a core —"
                " the load generator or PostgreSQL may be the bottleneck, not the server"
            )
    if own_latency is not None:
        figures["registry_own_half_latency"] = {
            "offered_rps": round(own_latency.load["offered_rps"], 1),
            "latency_ms": own_latency.load["latency_ms"],
        }
        summary.insert(
            2,
            f"  (registry cannot sustain that rate; at half its own maximum,"
            f" {own_latency.load['offered_rps']:,.0f} req/s:"
            f" p50 {own_latency.p50:.1f} ms p99 {own_latency.p99:.1f} ms)",
        )
    if not math.isfinite(p99_ratio):
        summary.append("warning: no latency samples")
    path = write_result(
        NAME,
        {
            "options": {
                "duration_s": opts.duration,
                "warmup_s": WARMUP_S,
                "elders": opts.elders,
                "saturation_connections": SATURATION_CONNECTIONS,
                "create_connections": CREATE_CONNECTIONS,
            },
            "figures": figures,
            "summary": summary,
            "phases": [p.as_dict() for p in phases],
        },
    )
    return Outcome(NAME, phases, summary, figures, path)
