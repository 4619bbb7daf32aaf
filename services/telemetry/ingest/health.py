"""Is the ingest storing? Seen by ops without reading logs, in three places:

- the ingest process's own ``/readyz`` (next to ``/metrics`` and ``/healthz`` on
  ``ELDERCARE_INGEST_METRICS_PORT``): 503 while any of its consumers fails to store, or while
  a broker link is not subscribed — the readiness probe of an ingest pod;
- ``eldercare_ingest_store_failing{consumer}`` (1 while failing) and
  ``eldercare_ingest_store_errors_total{consumer,error}`` on ``/metrics``;
- ``telemetry.ingest_health``, one row per ingest process, refreshed every
  ``RECORD_EVERY_S`` and at once on a change: the telemetry API's ``/readyz`` reports
  ``ingest`` as failing while a row written in the last ``FRESH_S`` says so.

A row that stops being refreshed (the process is gone) stops counting after ``FRESH_S``: a
dead ingest process is its own probe's and its supervisor's business, and a replica retired
for good must not keep the API unready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

from services.telemetry.ingest.errors import describe

log = logging.getLogger(__name__)

RECORD_EVERY_S = 5.0
FRESH_S = 30.0
FAILING = Gauge("eldercare_ingest_store_failing", "1 while a consumer cannot store", ["consumer"])
STORE_ERRORS = Counter(
    "eldercare_ingest_store_errors_total",
    "failed attempts to store (not the messages' fault), by error class",
    ["consumer", "error"],
)

_UPSERT = """
INSERT INTO telemetry.ingest_health AS h (worker, storing, failing_since, error, updated_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (worker) DO UPDATE SET storing = excluded.storing,
    failing_since = excluded.failing_since, error = excluded.error, updated_at = now()
"""
_FAILING = """
SELECT worker, failing_since, error FROM telemetry.ingest_health
WHERE updated_at > now() - make_interval(secs => $1) AND NOT storing
ORDER BY worker
"""


@dataclass
class Failure:
    since: datetime
    error: str
    attempts: int = 0


class Health:
    """What the consumers of one ingest process report; read from any thread."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.failures: dict[str, Failure] = {}
        self.links: dict[str, threading.Event] = {}
        self.changed = asyncio.Event()

    def failing(self, consumer: str, exc: BaseException) -> Failure:
        error = describe(exc)
        STORE_ERRORS.labels(consumer, type(exc).__name__).inc()
        failure = self.failures.get(consumer)
        if failure is None:
            failure = self.failures[consumer] = Failure(datetime.now(UTC), error)
            FAILING.labels(consumer).set(1)
            self.changed.set()
        elif failure.error != error:
            failure.error = error
            self.changed.set()
        failure.attempts += 1
        return failure

    def stored(self, consumer: str) -> None:
        if self.failures.pop(consumer, None) is not None:
            FAILING.labels(consumer).set(0)
            self.changed.set()

    def storing(self, consumer: str | None = None) -> bool:
        return not self.failures if consumer is None else consumer not in self.failures

    def report(self) -> tuple[bool, dict[str, str]]:
        """(ready, checks) for ``/readyz``: which part is down, without exception text."""
        checks: dict[str, str] = {}
        for consumer, f in sorted(self.failures.items()):
            checks[f"store:{consumer}"] = (
                f"failing since {f.since.isoformat(timespec='seconds')} ({f.error}), "
                f"{f.attempts} attempts; messages stay unacknowledged"
            )
        if not self.failures:
            checks["store"] = "ok"
        for name, subscribed in sorted(self.links.items()):
            checks[f"broker:{name}"] = "ok" if subscribed.is_set() else "not subscribed"
        ready = not self.failures and all(e.is_set() for e in self.links.values())
        return ready, checks

    # --- telemetry.ingest_health -------------------------------------------------------
    async def record(self, pool: asyncpg.Pool) -> None:
        """Keep this process's row current until cancelled; delete it on the way out."""
        try:
            while True:
                self.changed.clear()
                failure = min(self.failures.values(), key=lambda f: f.since, default=None)
                try:
                    await pool.execute(
                        _UPSERT,
                        self.worker,
                        failure is None,
                        failure.since if failure else None,
                        failure.error[:200] if failure else None,
                    )
                except Exception as exc:  # the store's trouble is reported by the store
                    log.debug("ingest health not recorded: %s", describe(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), RECORD_EVERY_S)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    pool.execute(
                        "DELETE FROM telemetry.ingest_health WHERE worker = $1", self.worker
                    ),
                    2,
                )


async def recorded_failures(conn: asyncpg.Connection | asyncpg.Pool) -> list[str]:
    """What fresh ``ingest_health`` rows report as failing (for the API's ``/readyz``)."""
    rows = await conn.fetch(_FAILING, FRESH_S)
    return [
        f"{r['worker']} failing to store since "
        f"{r['failing_since'].isoformat(timespec='seconds')} ({r['error']})"
        for r in rows
    ]


class IngestNotStoring(Exception):
    """Raised by the API's ready check while an ingest process reports it cannot store."""


async def check_recorded(pool: asyncpg.Pool) -> None:
    failures = await recorded_failures(pool)
    if failures:
        raise IngestNotStoring("; ".join(failures))


# --- the ingest process's own HTTP endpoints ---------------------------------------------
class OpsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` in a thread of their own, so a probe is
    answered even while the event loop is busy."""

    def __init__(self, health: Health, port: int, host: str = "0.0.0.0") -> None:
        self.health = health
        handler = _handler(health)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="ingest-ops-http", daemon=True
        )

    def start(self) -> OpsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(health: Health) -> type[BaseHTTPRequestHandler]:
    started = time.time()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200, b'{"status":"ok"}', "application/json")
            elif path == "/readyz":
                ready, checks = health.report()
                body = {
                    "status": "ok" if ready else "unavailable",
                    "worker": health.worker,
                    "up_s": round(time.time() - started),
                    "checks": checks,
                }
                self._send(200 if ready else 503, orjson.dumps(body), "application/json")
            else:
                self._send(404, b'{"status":"not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # probes are not news
            return

    return Handler
