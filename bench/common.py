"""What every benchmark needs: a database, servers in subprocesses, load, and result files."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.loadgen import Spec
from shared.embedded import EmbeddedPostgres, free_port, wait_for_port
from shared.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def database(work: Path) -> Iterator[str]:
    """A durable embedded PostgreSQL with the schema migrated; yields its postgresql:// URL."""
    server = EmbeddedPostgres(work / "pg", durable=True)
    url = server.start()
    try:
        upgrade(url)
        yield url
    finally:
        server.stop()


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system


@contextlib.contextmanager
def uvicorn_server(
    name: str, app: str, *, env: Mapping[str, str], work: Path, factory: bool = True
) -> Iterator[Server]:
    """One uvicorn worker (uvloop, httptools, no access log) in a subprocess."""
    port = free_port()
    log = work / f"{name}.log"
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        *(["--factory"] if factory else []),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(name, port, process, log)
    try:
        try:
            wait_for_port(port, process=process, timeout=60)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{name} did not start: {exc}\n{tail(log)}") from exc
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def http_request(
    method: str, path: str, *, token: str | None = None, body: bytes | None = None
) -> bytes:
    """Raw HTTP/1.1 request bytes for the load generator (keep-alive)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


def check(
    server: Server,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: bytes | None = None,
    expect: int = 200,
) -> bytes:
    """One request with the stdlib client: fail loudly before a phase measures error pages."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status != expect:
        raise RuntimeError(
            f"{server.name}: {method} {path} -> {response.status} (expected {expect}): "
            f"{data[:500]!r}\n{tail(server.log)}"
        )
    return data


@dataclass
class Phase:
    """One load-generator run against one server, with the server's CPU over the run."""

    name: str
    server: str
    load: dict[str, Any]
    server_cpu_s: float
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return float(self.load["rps"])

    @property
    def p50(self) -> float:
        return float(self.load["latency_ms"].get("p50", float("nan")))

    @property
    def p99(self) -> float:
        return float(self.load["latency_ms"].get("p99", float("nan")))

    @property
    def failures(self) -> int:
        return int(self.load["requests"] - self.load["ok"]) + sum(self.load["errors"].values())

    @property
    def server_cpu_share(self) -> float:
        return self.server_cpu_s / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        total = self.load["total_responses"]
        return self.server_cpu_s / total * 1e6 if total else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "server": self.server,
            "rps": round(self.rps, 1),
            "server_cpu_s": round(self.server_cpu_s, 3),
            "server_cpu_share": round(self.server_cpu_share, 3),
            "server_cpu_us_per_request": round(self.cpu_us_per_request, 1),
            "wall_s": round(self.wall_s, 3),
            "load": self.load,
            **self.extra,
        }


def run_load(name: str, server: Server, spec: Spec, work: Path) -> Phase:
    """Run the load generator in its own process against ``server``."""
    spec_path = work / f"{name}.spec.json"
    spec_path.write_text(spec.to_json(), encoding="utf-8")
    cpu0 = server.cpu_seconds()
    wall0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", str(spec_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=spec.warmup + spec.duration + spec.grace + spec.timeout + 30,
    )
    wall = time.monotonic() - wall0
    cpu = server.cpu_seconds() - cpu0
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed for {name}:\n{done.stderr[-3000:]}")
    phase = Phase(name, server.name, json.loads(done.stdout), cpu, wall)
    if phase.failures:
        print(
            f"  ! {name}: {phase.failures} failed or unanswered requests "
            f"(statuses {phase.load['statuses']}, errors {phase.load['errors']}, "
            f"unanswered {phase.load.get('incomplete', 0)})",
            file=sys.stderr,
        )
    return phase


def environment() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain")),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    payload = {"benchmark": name, "timestamp": stamp, "environment": environment(), **data}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def log(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)
