"""`eldercare up` as a user runs it: a subprocess, the demo district, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.embedded import free_port

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


def _up_once(env: dict[str, str]) -> dict:
    """Start `eldercare up` with 2 emulated homes, see data flow end to end, Ctrl-C it."""
    proc = subprocess.Popen(
        [*EXE, "up", "--homes", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out = _read_until(proc, r"Ctrl-C stops everything", timeout=120)
        token = re.search(r"admin token \(30 days\):\n\s+(\S+)", out).group(1)
        registry = re.search(r"registry\s+(http://\S+)", out).group(1)
        telemetry = re.search(r"telemetry\s+(http://\S+)", out).group(1)
        auth = {"Authorization": f"Bearer {token}"}
        demo = httpx.get(f"{registry}/v1/elders", headers=auth).json()["items"]
        assert {"陈阿婆", "林阿公"} <= {e["name"] for e in demo}
        # the emulator registers its homes, the ingest stores what their gateways publish
        deadline = time.monotonic() + 90
        while True:
            gateways = httpx.get(
                f"{registry}/v1/devices", headers=auth, params={"limit": 200}
            ).json()["items"]
            gateways = [d for d in gateways if d["kind"] == "gateway"]
            events = [
                httpx.get(f"{telemetry}/v1/devices/{g['device_id']}/events", headers=auth).json()
                for g in gateways
            ]
            if len(gateways) >= 2 and all(events):
                break
            assert time.monotonic() < deadline, f"no telemetry flowing: {gateways} {events}"
            time.sleep(0.5)
        elders = httpx.get(f"{registry}/v1/elders", headers=auth).json()["items"]
        return {"elders": len(elders), "gateways": len(gateways)}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0


def test_up_serves_the_demo_district_and_stops_cleanly(tmp_path):
    env = _env(tmp_path)
    first = _up_once(env)
    assert first == {"elders": 6, "gateways": 2}  # 4 demo elders + 2 emulated homes
    assert not (tmp_path / "pg" / "postmaster.pid").exists(), "PostgreSQL left running"
    # a second start reuses the data and creates nothing twice
    assert _up_once(env) == first


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
