"""`eldercare up` as a user runs it: a subprocess, the demo district, Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest

from shared.embedded import EmbeddedBroker, free_port, temp_dir

EXE = [sys.executable, "-m", "services.cli"]


def _env(tmp: Path, **ports: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env.update(
        {
            "ELDERCARE_DATA_DIR": str(tmp),
            "ELDERCARE_PG_PORT": str(ports.get("pg") or free_port()),
            "ELDERCARE_MQTT_PORT": str(ports.get("mqtt") or free_port()),
            "ELDERCARE_REGISTRY_PORT": str(ports.get("registry") or free_port()),
            "ELDERCARE_TELEMETRY_PORT": str(ports.get("telemetry") or free_port()),
            "ELDERCARE_DISPATCH_PORT": str(ports.get("dispatch") or free_port()),
            "ELDERCARE_SUBSIDY_PORT": str(ports.get("subsidy") or free_port()),
            "ELDERCARE_INGEST_METRICS_PORT": str(ports.get("ingest_metrics") or free_port()),
        }
    )
    return env


def _read_until(proc: subprocess.Popen, pattern: str, timeout: float) -> str:
    deadline, seen = time.monotonic() + timeout, []
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(line)
            if re.search(pattern, "".join(seen)):
                return "".join(seen)
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not seen within {timeout}s:\n{''.join(seen)}")


def _fetch(database_url: str, sql: str, *args: object) -> asyncpg.Record:
    async def one() -> asyncpg.Record:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchrow(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(one())


def _until(condition, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {within}s"
        time.sleep(0.5)


def _drain(proc: subprocess.Popen) -> None:
    """Keep reading the children's output: a full pipe would block their logging."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), True)
    threading.Thread(target=proc.stdout.read, daemon=True).start()


def _up_once(env: dict[str, str]) -> dict:
    """Start `eldercare up` with 2 emulated homes, see data flow end to end, Ctrl-C it.

    What flows must be fresh and on the wall clock: each gateway's power-on heartbeat of
    *this* start is stored (a restarted emulator that repeated message ids would have it
    dropped as a redelivery), every reading is stamped within a minute of its arrival (no
    fast simulated clock), and not one message named a device the ingest did not know
    (registration completes before anything is published)."""
    started = datetime.now(UTC)
    proc = subprocess.Popen(
        [*EXE, "up", "--homes", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out = _read_until(proc, r"Ctrl-C stops everything", timeout=120)
        ready = datetime.now(UTC)
        _drain(proc)
        token = re.search(r"admin token \(30 days\):\n\s+(\S+)", out).group(1)
        registry = re.search(r"registry\s+(http://\S+)", out).group(1)
        telemetry = re.search(r"telemetry\s+(http://\S+)", out).group(1)
        database_url = re.search(r"database\s+(postgresql://\S+)", out).group(1)
        assert "real time" in out
        auth = {"Authorization": f"Bearer {token}"}
        demo = httpx.get(f"{registry}/v1/elders", headers=auth).json()["items"]
        assert {"陈阿婆", "林阿公"} <= {e["name"] for e in demo}
        devices = httpx.get(f"{registry}/v1/devices", headers=auth, params={"limit": 200})
        gateways = [d["device_id"] for d in devices.json()["items"] if d["kind"] == "gateway"]
        emulated = [g for g in gateways if g.startswith("emu")]

        def powered_on() -> bool:  # the emulator starts just before `up` says it is ready
            row = _fetch(
                database_url,
                "SELECT count(DISTINCT device_id) AS n FROM telemetry.events"
                " WHERE device_id = ANY($1) AND event = 'heartbeat'"
                " AND received_at >= $2 AND device_ts <= $3",
                emulated,
                started,
                ready + timedelta(seconds=20),  # the next heartbeat is a minute later
            )
            return row["n"] == len(emulated) == 2

        _until(powered_on, "every emulated gateway's power-on heartbeat")
        # readings keep coming, on the wall clock
        _until(
            lambda: _fetch(
                database_url,
                "SELECT count(*) AS n FROM telemetry.events WHERE received_at >= $1",
                ready + timedelta(seconds=5),
            )["n"],
            "readings five seconds after the start",
        )
        skew = _fetch(
            database_url,
            "SELECT max(abs(extract(epoch FROM device_ts - received_at))) AS arrival,"
            " max(abs(extract(epoch FROM device_ts - now()))) AS wall, count(*) AS n"
            " FROM telemetry.events WHERE received_at >= $1",
            started,
        )
        assert skew["n"] > 2 and skew["arrival"] < 60 and skew["wall"] < 120, dict(skew)
        unknown = _fetch(
            database_url,
            "SELECT count(*) AS n FROM telemetry.dead_letters WHERE reason = 'unknown_device'",
        )
        assert unknown["n"] == 0
        # and the REST view shows them, newest first
        for gateway in emulated:
            page = httpx.get(
                f"{telemetry}/v1/devices/{gateway}/events",
                headers=auth,
                params={"since": started.isoformat()},
            ).json()
            assert page["items"] and page["items"][0]["event"] == "heartbeat", page
        elders = httpx.get(f"{registry}/v1/elders", headers=auth).json()["items"]
        return {"elders": len(elders), "gateways": len(gateways)}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: as root the embedded PostgreSQL runs as an unprivileged user that
    # must reach its data dir, and another pytest session resets /tmp/pytest-of-root to 0700
    # (pg_ctl could then not stop the server).
    path = temp_dir("eldercare-e2e-up-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_up_serves_the_demo_district_and_stops_cleanly(data_dir):
    env = _env(data_dir)
    first = _up_once(env)
    assert first == {"elders": 6, "gateways": 2}  # 4 demo elders + 2 emulated homes
    assert not (data_dir / "pg" / "postmaster.pid").exists(), "PostgreSQL left running"
    # a second start reuses the data and creates nothing twice, and its readings are fresh
    assert _up_once(env) == first


def test_a_backlog_for_the_emulated_homes_waits_for_their_registration(data_dir):
    """A broker already running (a system Mosquitto on 1883) keeps the ingest's persistent
    session across `eldercare up` runs, with what the last run's homes published after the
    ingest stopped. On a fresh database those devices exist again only once the emulator has
    registered them (same seed, same ids): an ingest started first dead-letters the backlog
    as `unknown_device` and, through its negative cache, the first fresh readings too."""
    broker = EmbeddedBroker(data_dir / "broker", prefer="mosquitto")
    if broker.kind != "mosquitto":
        pytest.skip("needs a broker that queues for an offline persistent session (Mosquitto)")
    broker.start()
    try:
        session = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="eldercare-up-ingest", clean_session=False
        )
        subscribed = threading.Event()
        session.on_subscribe = lambda *a: subscribed.set()
        session.connect("127.0.0.1", broker.port)
        session.loop_start()
        session.subscribe("$share/ingest/eldercare/v1/#", qos=1)
        assert subscribed.wait(10)
        session.disconnect()
        session.loop_stop()
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="last-run-home")
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        gateway = "emu1-h0000-gw"  # what seed 1's first home is called in every run
        for i in range(20):
            body = {"msg_id": f"last-run-{i}", "ts": datetime.now(UTC).isoformat(), "battery": 90}
            publisher.publish(
                f"eldercare/v1/{gateway}/{gateway}/heartbeat", orjson.dumps(body), qos=1
            ).wait_for_publish(10)
        publisher.disconnect()
        publisher.loop_stop()
        env = {**_env(data_dir / "up"), "ELDERCARE_MQTT_URL": broker.url}
        assert _up_once(env) == {"elders": 6, "gateways": 2}  # no unknown_device in it
    finally:
        broker.stop()


def test_up_names_the_variable_when_a_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*EXE, "up"],
            env=_env(tmp_path, registry=port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert "ELDERCARE_REGISTRY_PORT" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_token_command(tmp_path):
    env = _env(tmp_path)
    ok = subprocess.run(
        [*EXE, "token", "--role", "community", "--region", "350212"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and ok.stdout.count(".") == 2
    bad = subprocess.run(
        [*EXE, "token", "--role", "community"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "region" in bad.stderr


@pytest.mark.parametrize("argv", [["--help"], ["up", "--help"], ["migrate", "--help"]])
def test_cli_help(argv):
    result = subprocess.run([*EXE, *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage" in result.stdout


def test_ingest_command_parses_its_options():
    result = subprocess.run([*EXE, "ingest", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "--no-relay" in result.stdout and "--no-monitor" in result.stdout
