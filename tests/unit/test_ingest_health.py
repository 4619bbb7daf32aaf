"""What the ingest's /readyz says, from its consumers' reports."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

import asyncpg
import orjson

from services.telemetry.ingest.health import Health, OpsServer


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_readyz_goes_red_while_a_consumer_fails_and_green_when_it_stores():
    health = Health("ingest-unit")
    link = threading.Event()
    health.links = {"bulk": link}
    ops = OpsServer(health, 0, host="127.0.0.1").start()
    try:
        status, body = get(ops.port, "/readyz")
        assert status == 503 and orjson.loads(body)["checks"]["broker:bulk"] == "not subscribed"
        link.set()
        assert get(ops.port, "/readyz")[0] == 200
        exc = asyncpg.InsufficientPrivilegeError("permission denied for table events")
        health.failing("bulk", exc)
        health.failing("bulk", exc)
        status, body = get(ops.port, "/readyz")
        checks = orjson.loads(body)["checks"]
        assert status == 503 and "store" not in checks
        assert "InsufficientPrivilegeError sqlstate=42501" in checks["store:bulk"]
        assert "2 attempts" in checks["store:bulk"] and "permission denied" not in str(checks)
        assert not health.storing("bulk") and health.storing("urgent")
        health.stored("bulk")
        assert get(ops.port, "/readyz")[0] == 200
        assert get(ops.port, "/healthz")[0] == 200
        status, body = get(ops.port, "/metrics")
        assert status == 200 and b"eldercare_ingest_store_failing" in body
    finally:
        ops.stop()
