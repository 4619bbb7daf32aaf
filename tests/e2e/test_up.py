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


def _up_once(env: dict[str, str]) -> int:
    proc = subprocess.Popen(
        [*EXE, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out = _read_until(proc, r"Ctrl-C stops everything", timeout=120)
        token = re.search(r"admin token \(30 days\):\n\s+(\S+)", out).group(1)
        url = re.search(r"registry\s+(http://\S+)", out).group(1)
        r = httpx.get(f"{url}/v1/elders", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        return len(r.json()["items"])
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0


def test_up_serves_the_demo_district_and_stops_cleanly(tmp_path):
    env = _env(tmp_path)
    assert _up_once(env) == 4
    assert not (tmp_path / "pg" / "postmaster.pid").exists(), "PostgreSQL left running"
    # a second start reuses the data and does not seed twice
    assert _up_once(env) == 4


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
