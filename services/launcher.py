"""`eldercare up`: embedded PostgreSQL and broker (unless configured), migrations, demo seed,
one uvicorn process per service; Ctrl-C stops everything, the database included.

The order matters for the emulator: its homes are registered (or found again, see
``services.emulator.register``) once the registry answers and *before* the ingest starts, and
the emulator publishes only once the ingest is subscribed — so no message ever names a
device the ingest cannot find, and none is published into a broker nobody listens to yet.
What `up` emulates runs on the wall clock (readings stamped now, as a home's would be); a
demo sees incidents often because their *rate* is raised, never the clock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from shared.config import Settings
from shared.embedded import EmbeddedBroker, EmbeddedPostgres, port_is_open, wait_for_port

# Every REST service, each its own uvicorn process.
SERVICES = {
    "registry": "services.registry.app:create_app",
    "dispatch": "services.dispatch.app:create_app",
    "subsidy": "services.subsidy.app:create_app",
    "telemetry": "services.telemetry.app:create_app",
}


# Incidents per emulated home per hour under `up`: a home has one every 10 minutes, so ten
# homes give the duty desk an emergency every few minutes to look at. (The emulator's own
# default, 0.05, is a plausible real rate: nothing would happen during a demo.)
DEMO_INCIDENT_RATE = 6.0
INGEST_SUBSCRIBED_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class UpOptions:
    homes: int = 10
    emulator: bool = True
    seed: int = 1
    incident_rate: float = DEMO_INCIDENT_RATE


class StartupError(RuntimeError):
    """A one-line, actionable reason `up` cannot start."""


@dataclass
class Stack:
    settings: Settings
    pg: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    processes: dict[str, subprocess.Popen] | None = None
    optional: frozenset[str] = frozenset({"emulator"})  # may exit without stopping the rest

    def stop(self) -> None:
        for proc in (self.processes or {}).values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.processes or {}).values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.broker:
            self.broker.stop()
        if self.pg:
            self.pg.stop()


def _require_free(port: int, variable: str) -> None:
    if port_is_open(port):
        raise StartupError(f"port {port} is already in use; set {variable} to another port")


def _database(settings: Settings, stack: Stack, pg_port: int) -> str:
    if settings.database_url:
        return settings.database_url
    _require_free(pg_port, "ELDERCARE_PG_PORT (or ELDERCARE_DATABASE_URL)")
    stack.pg = EmbeddedPostgres(settings.data_dir / "pg", pg_port)
    print(f"· starting embedded PostgreSQL on 127.0.0.1:{pg_port} ({settings.data_dir / 'pg'})")
    return stack.pg.start()


def _broker(settings: Settings, stack: Stack) -> str:
    if settings.mqtt_url:
        return settings.mqtt_url
    port = settings.mqtt_port
    if port_is_open(port):
        print(f"· using the MQTT broker already answering on 127.0.0.1:{port}")
        return f"mqtt://127.0.0.1:{port}"
    stack.broker = EmbeddedBroker(settings.data_dir / "mqtt", port, prefer="amqtt")
    print(f"· starting embedded MQTT broker (amqtt) on 127.0.0.1:{port}")
    return stack.broker.start()


async def _seed(database_url: str, settings: Settings) -> bool:
    from services.registry.seed import seed_demo
    from shared.db import create_engine, create_sessionmaker
    from shared.pii import PiiCipher

    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with create_sessionmaker(engine).begin() as session:
            cipher = PiiCipher(settings.secret("pii_key"), settings.secret("pii_hash_key"))
            return await seed_demo(session, cipher)
    finally:
        await engine.dispose()


def up(settings: Settings, *, pg_port: int, options: UpOptions | None = None) -> int:
    options = options or UpOptions()
    from shared.auth import TokenCodec
    from shared.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(settings, processes={})
    for name in SERVICES:
        _require_free(getattr(settings, f"{name}_port"), f"ELDERCARE_{name.upper()}_PORT")
    if settings.ingest_metrics_port:
        _require_free(settings.ingest_metrics_port, "ELDERCARE_INGEST_METRICS_PORT")
    try:
        database_url = _database(settings, stack, pg_port)
        mqtt_url = _broker(settings, stack)
        print("· migrating")
        upgrade(database_url)
        if asyncio.run(_seed(database_url, settings)):
            print("· seeded the demo district (同安区, 350212)")
        env = {
            **os.environ,
            "ELDERCARE_DATABASE_URL": database_url,
            "ELDERCARE_MQTT_URL": mqtt_url,
            "ELDERCARE_DATA_DIR": str(settings.data_dir.resolve()),
        }
        if stack.broker is not None and not stack.broker.shared_subscriptions:
            env["ELDERCARE_MQTT_SHARED"] = "false"  # amqtt has no $share/…
        for name, factory in SERVICES.items():
            port = getattr(settings, f"{name}_port")
            stack.processes[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    factory,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                env=env,
            )
        for name in SERVICES:
            wait_for_port(
                getattr(settings, f"{name}_port"), timeout=60, process=stack.processes[name]
            )
        homes_file = settings.data_dir.resolve() / "emulator" / f"homes-seed{options.seed}.json"
        emulating = options.emulator and _register_homes(settings, options, homes_file)
        cli = [sys.executable, "-m", "services.cli"]
        stack.processes["ingest"] = subprocess.Popen(
            [*cli, "ingest", "--client-id", "eldercare-up-ingest"], env=env
        )
        if emulating:
            _wait_subscribed(settings, stack.processes["ingest"])
            stack.processes["emulator"] = subprocess.Popen(
                [
                    *cli,
                    "emulate",
                    "--homes",
                    str(options.homes),
                    "--seed",
                    str(options.seed),
                    "--homes-file",
                    str(homes_file),
                    "--speed",
                    "1",
                    "--incident-rate",
                    str(options.incident_rate),
                    "--quiet",
                ],
                env=env,
            )
        token = TokenCodec(settings).issue(role="admin", sub="admin", ttl=30 * 24 * 3600)
        print("\neldercare is up")
        for name in SERVICES:
            url = settings.service_url(name)
            print(f"  {name:<10} {url}   docs: {url}/docs")
        print("  ingest     worker running (MQTT → PostgreSQL → alerts)")
        if emulating:
            print(
                f"  emulator   {options.homes} homes (seed {options.seed}), real time, "
                f"{options.incident_rate:g} incidents per home per hour"
            )
        print(f"  database   {_redacted(database_url)}")
        print(f"  mqtt       {_redacted(mqtt_url)}")
        print(f"\nadmin token (30 days):\n  {token}\n")
        print(
            f'try: curl -H "Authorization: Bearer $TOKEN" {settings.service_url("registry")}'
            "/v1/elders\nCtrl-C stops everything."
        )
        return _supervise(stack)
    except StartupError:
        stack.stop()
        raise
    except KeyboardInterrupt:
        print("\nstopping…")
        stack.stop()
        return 0
    except BaseException:
        stack.stop()
        raise


def _register_homes(settings: Settings, options: UpOptions, homes_file: Path) -> bool:
    """Register the emulator's homes through the registry API (or find them again); False
    (and one line saying why) when that fails: the emulator is optional, the rest runs."""
    from services.emulator.cli import register
    from services.emulator.options import EmulatorOptions
    from services.emulator.register import RegistrationError

    emulated = EmulatorOptions(
        homes=options.homes, seed=options.seed, registry_url=settings.service_url("registry")
    )
    print(f"· registering {options.homes} emulated homes")
    try:
        asyncio.run(register(emulated, settings, homes_file=homes_file))
    except (RegistrationError, OSError, ValueError) as exc:
        print(f"emulator not started: registration failed: {exc}", file=sys.stderr)
        return False
    return True


def _wait_subscribed(settings: Settings, ingest: subprocess.Popen) -> None:
    """Until the ingest's links are subscribed (its /metrics says so), bounded: messages
    published before would reach no one on a broker that has no session for it yet."""
    if not settings.ingest_metrics_port:
        return
    url = f"http://127.0.0.1:{settings.ingest_metrics_port}/metrics"
    deadline = time.monotonic() + INGEST_SUBSCRIBED_TIMEOUT_S
    while time.monotonic() < deadline and ingest.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if ingest_subscribed(r.read().decode()):
                    return
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    print("· the ingest has not confirmed its subscription; starting the emulator anyway")


def ingest_subscribed(metrics: str) -> bool:
    """Both links (bulk, urgent) report ``eldercare_ingest_subscribed 1``."""
    links = {}
    for line in metrics.splitlines():
        if line.startswith("eldercare_ingest_subscribed{"):
            labels, _, value = line.rpartition(" ")
            links[labels] = float(value)
    return len(links) >= 2 and all(v == 1.0 for v in links.values())


def _supervise(stack: Stack) -> int:
    stopping = False

    def _stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping:
            for name, proc in list((stack.processes or {}).items()):
                if proc.poll() is None:
                    continue
                if name in stack.optional:
                    print(
                        f"{name} exited with {proc.returncode}; the rest keeps running",
                        file=sys.stderr,
                    )
                    del stack.processes[name]
                    continue
                print(f"{name} exited with {proc.returncode}; stopping", file=sys.stderr)
                stopping = True
            time.sleep(0.5)
    finally:
        print("\nstopping…")
        stack.stop()
        print("stopped")
    return 0


def _redacted(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def pg_port_from_env() -> int:
    return int(os.environ.get("ELDERCARE_PG_PORT", "55432"))
