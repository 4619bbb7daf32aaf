"""Telemetry ingest benchmark against real Mosquitto and a durable embedded PostgreSQL.

The worker under test is ``python -m services.cli ingest`` in a subprocess; every publisher
and subscriber is a separate process (or, for the emergency latency probe, a paho thread next
to the asyncpg listener that times it), so no client's CPU is charged to the worker.

Phases, baselines first (no ingest subscription exists while they run):

1. raw        N single-event QoS 1 messages, broker → a plain paho subscriber (auto-ack):
              what one Python publisher gets through to a plain subscriber — baseline.
2. floor      emergencies at 5/s under 1 000 vitals/s: publish → paho subscriber → one-row
              INSERT + COMMIT + NOTIFY → listener — the latency baseline.
3. single     the same N messages → the worker: N / time until all N are in telemetry.events.
4. batched    gateways publish ``…/batch`` arrays of 50 vitals: events/s until all stored.
5. latency    like (2) against the worker: publish → the alert row committed (LISTEN
              ``telemetry_alerts``, which the pipeline notifies in the alert's transaction).
6. overload   ~10× the rate of (4) for 10 s from two publishers, an emergency every 0.5 s
              on its own topic and one inside every 100th batch, with the settings we ship
              (the worker's queue bound and Mosquitto's in-flight window): the worker
              survives, memory stays bounded, every emergency is stored and alerted, and the
              rest is shed *by the worker* — its shed counter accounts for every event not
              stored (had the broker dropped them, the two would differ).

``ELDERCARE_BENCH_SCALE`` (default 1) scales message counts and durations down for quick
runs on a shared machine; the figures of record are taken at 1.

Clocks: every timestamp is ``time.perf_counter()``, CLOCK_MONOTONIC on Linux, which is the
same clock in every process of the machine, so a publisher's "first publish" and the poller's
"all stored" can be subtracted.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
import paho.mqtt.client as mqtt
import psutil

from bench.loadgen import percentiles
from shared.config import MQTT_MAX_INFLIGHT, Settings
from shared.embedded import free_port
from shared.mqtt import set_nodelay

if TYPE_CHECKING:
    from bench.common import Phase
    from bench.registry import Options
    from shared.embedded import EmbeddedBroker

# Child processes are spawned (the parent runs threads and event loops, so fork is unsafe);
# they import this module, so the heavy parent-only modules (bench.common pulls in Alembic
# and SQLAlchemy through shared.migrate) are imported inside the functions that use them.

NAME = "ingest"
SHIPPED = Settings()  # the defaults a deployment gets
JWT_SECRET = "bench-secret-" + "x" * 32
ROOT = Path(__file__).resolve().parent.parent

SCALE = float(os.environ.get("ELDERCARE_BENCH_SCALE", "1"))
SINGLE_N = int(40_000 * SCALE)  # phases 1 and 3
BATCH = 50  # events per …/batch message
BATCH_EVENTS = int(200_000 * SCALE)  # phase 4
HOMES_PER_PHASE = 20
BACKGROUND_RATE = 1_000.0  # vitals/s under the latency phases
EMERGENCIES = max(20, int(200 * SCALE))
EMERGENCY_RATE = 5.0  # per second
WARMUP_S = 1.0  # background load before the first emergency
OVERLOAD_S = max(3.0, 10.0 * SCALE)
OVERLOAD_FACTOR = 10.0
OVERLOAD_PUBLISHERS = 2
OVERLOAD_EMERGENCY_EVERY_S = 0.5
OVERLOAD_SOS_EVERY = 100  # every 100th overload batch carries an emergency: never shed
POLL_S = 0.1

SINGLE_RATIO_TARGET = 0.8  # ingest single-event rate ÷ raw broker→subscriber rate
BATCH_TARGET = 10_000.0  # events/s
EMERGENCY_P99_TARGET_MS = 10.0

PAHO = mqtt.CallbackAPIVersion.VERSION2
ALL_TOPICS = "eldercare/v1/#"
FLOOR_CHANNEL = "bench_floor"
ALERT_CHANNEL = "telemetry_alerts"  # services.telemetry.alerts.lifecycle.NOTIFY_CHANNEL

_FLOOR_TABLES = """
CREATE TABLE IF NOT EXISTS public.bench_floor (
    msg_id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS public.bench_floor_bulk (
    msg_id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
"""
_FLOOR_URGENT = """
WITH row AS (INSERT INTO public.bench_floor (msg_id) VALUES ($1) RETURNING msg_id)
SELECT pg_notify('bench_floor', msg_id) FROM row
"""
_FLOOR_BULK = (
    "INSERT INTO public.bench_floor_bulk (msg_id) SELECT * FROM unnest($1::text[])"
    " ON CONFLICT DO NOTHING"
)
_ALERT_OF_SEQ = """
SELECT l.action, a.id, a.details->>'msg_id' AS msg_id
FROM telemetry.alert_log l JOIN telemetry.alerts a ON a.id = l.alert_id WHERE l.seq = $1
"""
# Each latency-phase home gets an emergency every few seconds, which the pipeline would count
# on the still-open alert (de-duplication) instead of raising a new one: close it, as a
# caregiver would, as soon as it has been timed.
_RESOLVE = (
    "UPDATE telemetry.alerts SET status = 'resolved', resolved_at = now(),"
    " resolved_by = 'bench', resolution_note = 'bench' WHERE id = $1"
)


@dataclass(frozen=True)
class Home:
    gateway: str
    vitals: str
    button: str
    elder_id: str


# --- MQTT clients ------------------------------------------------------------------------


def connect(
    client_id: str,
    port: int,
    *,
    subscribe: str | None = None,
    on_message: Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None] | None = None,
) -> mqtt.Client:
    """A paho client as the platform configures them (QoS 1, 1 000 in flight, TCP_NODELAY),
    connected with its network thread running, and subscribed when asked."""
    client = mqtt.Client(PAHO, client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    ready = threading.Event()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        set_nodelay(c)
        if subscribe:
            c.subscribe(subscribe, qos=1)
        else:
            ready.set()

    def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        ready.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    if on_message is not None:
        client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    if not ready.wait(15):
        client.loop_stop()
        raise RuntimeError(f"{client_id}: no CONNACK/SUBACK from the broker on port {port}")
    return client


def close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


# --- child processes -----------------------------------------------------------------------


@dataclass(frozen=True)
class PublishJob:
    port: int
    client_id: str
    targets: tuple[tuple[str, str], ...]  # (gateway_id, vital monitor device_id)
    prefix: str  # msg_id prefix, distinct per phase
    messages: int
    batch: int = 0  # 0: one event per message on …/{device}/vitals; n: n-event …/batch arrays
    rate: float = 0.0  # messages/s; 0 = as fast as paho takes them
    buttons: tuple[str, ...] = ()  # per target: its emergency button (for ``sos_every``)
    sos_every: int = 0  # n: every n-th batch ends with an emergency instead of a reading


def sos_in_batch(job: PublishJob, i: int) -> bool:
    return bool(
        job.batch
        and job.sos_every
        and i % job.sos_every == 0
        and job.buttons
        and job.buttons[i % len(job.targets)]
    )


def build_messages(job: PublishJob) -> list[tuple[str, bytes]]:
    """~145-byte vitals payloads (a 60-character msg_id) with ids unique per job."""
    ts = datetime.now(UTC).isoformat()
    out: list[tuple[str, bytes]] = []
    targets = job.targets
    for i in range(job.messages):
        gateway, device = targets[i % len(targets)]
        if not job.batch:
            body: Any = {
                "msg_id": f"{job.prefix}-{i:08d}".ljust(60, "x"),
                "ts": ts,
                "heart_rate": 60 + i % 30,
                "resp_rate": 12 + i % 8,
            }
            out.append((f"eldercare/v1/{gateway}/{device}/vitals", orjson.dumps(body)))
            continue
        body = [
            {
                "device_id": device,
                "event": "vitals",
                "msg_id": f"{job.prefix}-{i:07d}-{j:03d}".ljust(60, "x"),
                "ts": ts,
                "heart_rate": 60 + (i + j) % 30,
                "resp_rate": 12 + (i + j) % 8,
            }
            for j in range(job.batch)
        ]
        if sos_in_batch(job, i):
            body[-1] = {
                "device_id": job.buttons[i % len(targets)],
                "event": "emergency",
                "msg_id": f"{job.prefix}-sos-{i:07d}",
                "ts": ts,
                "button": "pendant",
            }
        out.append((f"eldercare/v1/{gateway}/batch", orjson.dumps(body)))
    return out


def publisher_main(job: PublishJob, pipe: Connection) -> None:
    """Child: build every payload, connect, report ready; on "go" publish (paced when
    ``job.rate``), stop early on "stop", wait for every PUBACK and report the timings."""
    messages = build_messages(job)
    client = connect(job.client_id, job.port)
    pipe.send({"payload_bytes": sum(len(p) for _, p in messages) / max(1, len(messages))})
    pipe.recv()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    infos = []
    for i, (topic, payload) in enumerate(messages):
        if job.rate:
            delay = t0 + i / job.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        infos.append(client.publish(topic, payload, qos=1))
        if i % 200 == 199 and pipe.poll():
            pipe.recv()
            break
    sent = time.perf_counter()
    for info in infos:
        info.wait_for_publish(120)
    acked = time.perf_counter()
    pipe.send(
        {
            "first_publish": t0,
            "last_publish": sent,
            "all_acked": acked,
            "published": len(infos),
            "acked": sum(1 for info in infos if info.is_published()),
            "events_per_message": job.batch or 1,
            "cpu_s": time.process_time() - cpu0,
        }
    )
    close(client)


def raw_subscriber_main(port: int, expected: int, pipe: Connection) -> None:
    """Child: a plain paho subscriber (QoS 1, auto-ack) that counts and times messages."""
    seen = {"count": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: Any, _msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        seen["count"] += 1
        if seen["count"] == 1:
            seen["first"] = now
        seen["last"] = now
        if seen["count"] >= expected:
            done.set()

    client = connect("bench-raw-sub", port, subscribe=ALL_TOPICS, on_message=on_message)
    pipe.send({})
    cpu0 = time.process_time()
    while not done.wait(0.1):
        if pipe.poll():
            pipe.recv()
            break
    pipe.send({**seen, "cpu_s": time.process_time() - cpu0})
    close(client)


def floor_subscriber_main(port: int, url: str, pipe: Connection) -> None:
    asyncio.run(_floor_subscriber(port, url, pipe))


async def _floor_subscriber(port: int, url: str, pipe: Connection) -> None:
    """Child: the least an ingest can do — emergencies one by one (INSERT + COMMIT + NOTIFY
    on their own connection), the background batched every 50 ms on another."""
    loop = asyncio.get_running_loop()
    urgent_conn = await asyncpg.connect(url)
    bulk_conn = await asyncpg.connect(url)
    urgent: asyncio.Queue[bytes] = asyncio.Queue()
    bulk: list[bytes] = []
    counts = {"urgent": 0, "bulk": 0}

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/emergency"):
            loop.call_soon_threadsafe(urgent.put_nowait, msg.payload)
        else:
            bulk.append(msg.payload)

    async def commit_urgent() -> None:
        while True:
            payload = await urgent.get()
            await urgent_conn.execute(_FLOOR_URGENT, orjson.loads(payload)["msg_id"])
            counts["urgent"] += 1

    async def commit_bulk() -> None:
        while True:
            await asyncio.sleep(0.05)
            items = bulk[:]
            if items:
                del bulk[: len(items)]
                await bulk_conn.execute(_FLOOR_BULK, [orjson.loads(p)["msg_id"] for p in items])
                counts["bulk"] += len(items)

    client = connect("bench-floor-sub", port, subscribe=ALL_TOPICS, on_message=on_message)
    tasks = [asyncio.create_task(commit_urgent()), asyncio.create_task(commit_bulk())]
    stop = asyncio.Event()
    loop.add_reader(pipe.fileno(), stop.set)
    pipe.send({})
    cpu0 = time.process_time()
    await stop.wait()
    loop.remove_reader(pipe.fileno())
    pipe.recv()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    close(client)
    await urgent_conn.close()
    await bulk_conn.close()
    pipe.send({**counts, "cpu_s": time.process_time() - cpu0})


class Child:
    """A spawned process speaking over a pipe: ready → "go" → (optional "stop") → result."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child_end = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(*args, child_end), daemon=True)
        self.process.start()
        child_end.close()
        self.info: dict[str, Any] = self._recv(120)

    def _recv(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.pipe.poll(0.1):
            if not self.process.is_alive():
                raise RuntimeError(f"child {self.process.name} exited ({self.process.exitcode})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"child {self.process.name}: no answer within {timeout:g} s")
        try:
            message: dict[str, Any] = self.pipe.recv()
        except EOFError:
            self.process.join(5)
            raise RuntimeError(
                f"child {self.process.name} exited ({self.process.exitcode}) without answering"
            ) from None
        return message

    def go(self) -> None:
        self.pipe.send("go")

    def stop(self) -> None:
        self.pipe.send("stop")

    def done(self) -> bool:
        return self.pipe.poll()

    def result(self, timeout: float = 180) -> dict[str, Any]:
        message = self._recv(timeout)
        self.process.join(10)
        return message

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


async def result_of(child: Child, limit_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while not child.done():
        if time.monotonic() > deadline or not child.process.is_alive():
            break
        await asyncio.sleep(0.02)
    return child.result(5)


def publisher(job: PublishJob) -> Child:
    return Child(publisher_main, job)


# --- the worker under test ---------------------------------------------------------------


class Sampler:
    """Peak RSS of some processes, sampled every 50 ms in a thread."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peaks = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for name, proc in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    self.peaks[name] = max(self.peaks[name], proc.memory_info().rss)

    def reset(self) -> None:
        for name, proc in self.procs.items():
            try:
                self.peaks[name] = proc.memory_info().rss
            except psutil.Error:
                self.peaks[name] = 0

    def rss(self, name: str) -> int:
        try:
            return int(self.procs[name].memory_info().rss)
        except psutil.Error:
            return 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)


class Worker:
    """``eldercare ingest`` in a subprocess, with its CPU and peak RSS."""

    def __init__(
        self,
        env: dict[str, str],
        work: Path,
        *,
        queue_max: int | None = None,
        only: str | None = None,
    ) -> None:
        self.queue_max = queue_max if queue_max is not None else SHIPPED.ingest_queue_max
        cmd = [sys.executable, "-m", "services.cli", "ingest", "--client-id", "bench-ingest"]
        cmd.append("--no-relay")
        if only:
            cmd += ["--only", only]
        if no_monitor_flag():
            cmd.append("--no-monitor")
        self.cmd = cmd
        self.metrics_port = free_port()
        env = {**os.environ, **env, "ELDERCARE_INGEST_METRICS_PORT": str(self.metrics_port)}
        if queue_max is not None:
            env["ELDERCARE_INGEST_QUEUE_MAX"] = str(queue_max)
        self.log = work / f"worker-{int(time.time() * 1000)}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.ps = psutil.Process(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def counters(self) -> dict[str, float]:
        """The worker's Prometheus counters (``eldercare_*_total``, per label set); empty when
        it serves no /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            series, _, value = line.rpartition(" ")
            if line.startswith("eldercare_") and series.split("{", 1)[0].endswith("_total"):
                out[series] = float(value)
        return out

    def gauge(self, series: str) -> float | None:
        """One series of the worker's /metrics, e.g. ``eldercare_ingest_queue{queue="bulk"}``."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name == series:
                return float(value)
        return None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_no_monitor: bool | None = None


def no_monitor_flag() -> bool:
    """Whether ``eldercare ingest`` has ``--no-monitor`` (the periodic rules, not under test)."""
    global _no_monitor
    if _no_monitor is None:
        helptext = subprocess.run(
            [sys.executable, "-m", "services.cli", "ingest", "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        _no_monitor = "--no-monitor" in helptext
    return _no_monitor


class CpuMeter:
    """CPU seconds of the broker and of PostgreSQL (postmaster + backends) since a snapshot.

    Per process: a backend that exits between two snapshots takes its CPU with it (counted
    low, never negative); one that starts in between counts in full."""

    def __init__(self, broker_pid: int, postmaster_pid: int) -> None:
        self.broker = psutil.Process(broker_pid)
        self.postmaster = psutil.Process(postmaster_pid)

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        try:
            t = proc.cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return 0.0

    def snapshot(self) -> dict[str, dict[int, float]]:
        pg = [self.postmaster, *self.postmaster.children()]
        return {
            "broker": {self.broker.pid: self._cpu(self.broker)},
            "postgres": {p.pid: self._cpu(p) for p in pg},
        }

    @staticmethod
    def used(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


# --- database helpers ----------------------------------------------------------------------


async def stored_count(db: asyncpg.Connection, where: str = "") -> int:
    return int(await db.fetchval(f"SELECT count(*) FROM telemetry.events {where}"))


async def truncate(db: asyncpg.Connection) -> None:
    await db.execute("TRUNCATE telemetry.events, telemetry.seen")


@dataclass
class Progress:
    target: int
    stored: int = 0
    done_at: float = 0.0  # perf_counter when ``target`` was first seen stored (0: never)
    last_change: float = 0.0  # perf_counter of the last poll that saw the count grow
    samples: list[tuple[float, int]] = field(default_factory=list)

    def steady_rate(self, low: float = 0.1, high: float = 0.9) -> float:
        """Events/s between the samples where low·target and high·target were stored."""
        a = next((s for s in self.samples if s[1] >= low * self.target), None)
        b = next((s for s in self.samples if s[1] >= high * self.target), None)
        if a is None or b is None or b[0] <= a[0]:
            return float("nan")
        return (b[1] - a[1]) / (b[0] - a[0])


async def wait_stored(
    db: asyncpg.Connection,
    target: int,
    worker: Worker,
    *,
    limit_s: float,
    stall_s: float = 15.0,
    settle_s: float | None = None,
    drained: Callable[[], bool] | None = None,
) -> Progress:
    """Poll ``count(*)`` every 100 ms until ``target`` events are stored, nothing has been
    added for ``stall_s`` (or, with ``settle_s``, for that long — and ``drained()`` says the
    worker holds nothing more: a transaction of 500 batches can take longer than
    ``settle_s``), or ``limit_s``."""
    progress = Progress(target)
    deadline = time.perf_counter() + limit_s
    changed = time.perf_counter()
    while True:
        n = await stored_count(db)
        now = time.perf_counter()
        progress.samples.append((now, n))
        if n != progress.stored:
            changed = progress.last_change = now
        progress.stored = n
        if n >= target and settle_s is None:
            progress.done_at = now
            return progress
        if not worker.alive():
            raise RuntimeError(f"the ingest worker died:\n{worker.tail()}")
        quiet = now - changed
        if now > deadline:
            return progress
        if settle_s is None and quiet > stall_s:
            return progress
        if settle_s is not None and quiet > settle_s and (drained is None or drained()):
            return progress
        await asyncio.sleep(POLL_S)


async def wait_subscribed(url: str, port: int, home: Home, worker: Worker) -> float:
    """Publish probes until one is stored: the worker is connected, subscribed and writing."""
    started = time.perf_counter()
    db = await asyncpg.connect(url)
    client = connect("bench-probe", port)
    try:
        for i in range(300):
            if not worker.alive():
                raise RuntimeError(f"the ingest worker exited:\n{worker.tail()}")
            body = {"msg_id": f"probe-{i}", "ts": datetime.now(UTC).isoformat(), "heart_rate": 70}
            client.publish(f"eldercare/v1/{home.gateway}/{home.vitals}/vitals", orjson.dumps(body))
            await asyncio.sleep(0.2)
            if await stored_count(db, "WHERE msg_id LIKE 'probe-%'"):
                return time.perf_counter() - started
        raise TimeoutError(f"the ingest worker stored no probe within 60 s:\n{worker.tail()}")
    finally:
        close(client)
        await db.close()


def wait_link(worker: Worker | None, link: str, within: float = 60.0) -> None:
    """Until the worker's /metrics says its ``link`` is subscribed."""
    assert worker is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"the {link} worker exited:\n{worker.tail()}")
        url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if f'eldercare_ingest_subscribed{{link="{link}"}} 1.0' in response.read().decode():
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the {link} link did not subscribe within {within} s")


# --- emergencies, timed by LISTEN ----------------------------------------------------------


@dataclass
class Emergencies:
    published: dict[str, float] = field(default_factory=dict)  # msg_id → perf_counter
    committed: dict[str, float] = field(default_factory=dict)  # msg_id → NOTIFY received

    def latencies(self) -> list[float]:
        return [self.committed[m] - t for m, t in self.published.items() if m in self.committed]

    def summary(self) -> dict[str, Any]:
        return {
            "published": len(self.published),
            "committed": len(self.committed),
            "latency_ms": percentiles(self.latencies()),
            "over_target": sum(1 for x in self.latencies() if x * 1000 > EMERGENCY_P99_TARGET_MS),
        }


async def drive_emergencies(
    url: str,
    port: int,
    homes: Sequence[Home],
    *,
    prefix: str,
    count: int,
    rate: float,
    channel: str,
    settle_s: float = 5.0,
) -> Emergencies:
    """Publish ``count`` emergencies at ``rate``/s (round robin over ``homes``) from a paho
    thread in this process and time each one to its NOTIFY on ``channel``.

    ``channel`` is the floor's (payload = msg_id) or the pipeline's ``telemetry_alerts``
    (payload = alert_log seq: looked up to the alert's msg_id, which is then resolved)."""
    result = Emergencies()
    notified: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    def on_notify(_c: Any, _pid: int, _channel: str, payload: str) -> None:
        notified.put_nowait((payload, time.perf_counter()))

    listen = await asyncpg.connect(url)
    lookup = await asyncpg.connect(url)
    await listen.add_listener(channel, on_notify)
    client = connect(f"bench-{prefix}-emergency", port)

    async def match() -> None:
        while True:
            payload, at = await notified.get()
            if channel == FLOOR_CHANNEL:
                msg_id: str | None = payload
            else:
                row = await lookup.fetchrow(_ALERT_OF_SEQ, int(payload))
                if row is None or row["action"] != "raised":
                    continue
                msg_id = row["msg_id"]
                if msg_id in result.published:
                    await lookup.execute(_RESOLVE, row["id"])
            if msg_id in result.published:
                result.committed[msg_id] = at
                if len(result.committed) == count:
                    all_in.set()

    all_in = asyncio.Event()
    matcher = asyncio.create_task(match())
    try:
        t0 = time.perf_counter()
        for i in range(count):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            home = homes[i % len(homes)]
            msg_id = f"{prefix}-{i:05d}"
            body = {"msg_id": msg_id, "ts": datetime.now(UTC).isoformat(), "button": "main"}
            payload = orjson.dumps(body)
            topic = f"eldercare/v1/{home.gateway}/{home.button}/emergency"
            result.published[msg_id] = time.perf_counter()
            client.publish(topic, payload, qos=1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), settle_s)
    finally:
        matcher.cancel()
        await asyncio.gather(matcher, return_exceptions=True)
        close(client)
        await listen.close()
        await lookup.close()
    return result


# --- registry setup ------------------------------------------------------------------------


def register_homes(url: str, work: Path, sets: dict[str, int]) -> dict[str, list[Home]]:
    """Homes through the registry API (uvicorn subprocess): per home an elder (assessed, with a
    family caregiver), a bed, a gateway, a vital monitor and an emergency button."""
    from bench.common import check, uvicorn_server
    from bench.registry import elder_bodies
    from shared.auth import TokenCodec
    from shared.config import Settings
    from shared.ids import credit_code_check_char

    data_dir = work / "data"
    data_dir.mkdir(exist_ok=True)
    token = TokenCodec(Settings(jwt_secret=JWT_SECRET, data_dir=data_dir)).issue(
        role="admin", ttl=3600
    )
    env = {
        "ELDERCARE_DATABASE_URL": url,
        "ELDERCARE_DATA_DIR": str(data_dir),
        "ELDERCARE_JWT_SECRET": JWT_SECRET,
        "ELDERCARE_PII_KEY": "bench",
        "ELDERCARE_PII_HASH_KEY": "bench",
        "ELDERCARE_LOG_LEVEL": "WARNING",
    }
    app = "services.registry.app:create_app"
    total = sum(sets.values())
    bodies = iter(elder_bodies(total, born_from=date(1948, 1, 1)))
    with uvicorn_server("registry", app, env=env, work=work) as server:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            data = check(server, "POST", path, token=token, body=orjson.dumps(body), expect=201)
            created: dict[str, Any] = orjson.loads(data)
            return created

        credit = "91350212MA" + "7654321"
        org = post(
            "/v1/orgs",
            {
                "name": "同安颐养服务中心",
                "credit_code": credit + credit_code_check_char(credit),
                "region": "350212",
                "medical_license": "PDY12345",
            },
        )
        station = post(
            f"/v1/orgs/{org['id']}/stations",
            {"name": "大同站", "lat": 24.73, "lon": 118.15, "zone": "urban"},
        )

        def home(tag: str, i: int, elder_body: bytes) -> Home:
            elder = post(
                "/v1/elders", {**orjson.loads(elder_body), "living_arrangement": "with_family"}
            )
            eid = elder["id"]
            post(
                f"/v1/elders/{eid}/assessments",
                {
                    "level": 2,
                    "assessed_on": str(date.today() - timedelta(days=3)),
                    "assessor": "第三方评估机构",
                },
            )
            post(
                f"/v1/elders/{eid}/family-caregivers",
                {"name": "陈女儿", "relation": "child", "phone": "13900000000", "lives_with": True},
            )
            bed = post(
                "/v1/beds", {"elder_id": eid, "org_id": org["id"], "station_id": station["id"]}
            )
            gw, vit, btn = (f"{kind}-{tag}-{i:03d}" for kind in ("gw", "vit", "btn"))
            post(
                "/v1/devices",
                {"device_id": gw, "kind": "gateway", "elder_id": eid, "bed_id": bed["id"]},
            )
            for device, kind in ((vit, "vital_monitor"), (btn, "emergency_button")):
                post(
                    "/v1/devices",
                    {"device_id": device, "gateway_id": gw, "kind": kind, "elder_id": eid},
                )
            return Home(gw, vit, btn, eid)

        jobs = [(tag, i, next(bodies)) for tag, n in sets.items() for i in range(n)]
        with ThreadPoolExecutor(6) as pool:
            homes = list(pool.map(lambda job: home(*job), jobs))
    out: dict[str, list[Home]] = {tag: [] for tag in sets}
    for (tag, _, _), h in zip(jobs, homes, strict=True):
        out[tag].append(h)
    return out


# --- the run -------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    phases: list[Phase]  # the registry-style table; this benchmark prints its own
    summary: list[str]
    figures: dict[str, Any]
    path: Path


@dataclass
class Context:
    url: str
    port: int
    work: Path
    homes: dict[str, list[Home]]
    cpu: CpuMeter
    worker_env: dict[str, str]
    worker: Worker | None = None
    urgent_worker: Worker | None = None  # the emergency path in a process of its own
    sampler: Sampler | None = None

    def targets(self, tag: str) -> tuple[tuple[str, str], ...]:
        return tuple((h.gateway, h.vitals) for h in self.homes[tag])

    def buttons(self, tag: str, homes: int) -> tuple[str, ...]:
        """The first ``homes`` homes' buttons, "" for the others (no emergency in theirs)."""
        return tuple(h.button if i < homes else "" for i, h in enumerate(self.homes[tag]))

    def start_worker(self, queue_max: int | None = None, split: bool = False) -> Worker:
        """One ingest process, or (``split``) a bulk process plus an urgent-only one."""
        self.stop_worker()
        worker = Worker(
            self.worker_env, self.work, queue_max=queue_max, only="bulk" if split else None
        )
        if split:
            self.urgent_worker = Worker(self.worker_env, self.work, only="urgent")
        self.worker = worker
        self.sampler = Sampler({"worker": worker.process.pid, "broker": self.cpu.broker.pid})
        return worker

    def stop_worker(self) -> None:
        if self.sampler is not None:
            self.sampler.close()
            self.sampler = None
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self.urgent_worker is not None:
            self.urgent_worker.stop()
            self.urgent_worker = None


class Meter:
    """Wall time and CPU of the worker, broker and PostgreSQL over one phase."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.wall0 = time.perf_counter()
        self.sys0 = ctx.cpu.snapshot()
        self.worker0 = ctx.worker.cpu_seconds() if ctx.worker else 0.0
        self.counters0 = ctx.worker.counters() if ctx.worker else {}
        if ctx.sampler:
            ctx.sampler.reset()

    def read(self, events: int | None = None) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall0
        sys1 = self.ctx.cpu.snapshot()
        used = {k: CpuMeter.used(self.sys0[k], sys1[k]) for k in sys1}
        out: dict[str, Any] = {
            "wall_s": round(wall, 3),
            "broker_cpu_share": round(used["broker"] / wall, 3),
            "postgres_cpu_share": round(used["postgres"] / wall, 3),
        }
        worker, sampler = self.ctx.worker, self.ctx.sampler
        if worker is not None and worker.alive():
            cpu = worker.cpu_seconds() - self.worker0
            out["worker_cpu_s"] = round(cpu, 3)
            out["worker_cpu_share"] = round(cpu / wall, 3)
            if events:
                out["worker_cpu_us_per_event"] = round(cpu / events * 1e6, 1)
            counters = worker.counters()
            if counters:
                out["worker_counters"] = {
                    k: v - self.counters0.get(k, 0.0)
                    for k, v in sorted(counters.items())
                    if v != self.counters0.get(k, 0.0)
                }
        if sampler is not None:
            out["worker_rss_max_mb"] = round(sampler.peaks["worker"] / 2**20, 1)
            out["broker_rss_max_mb"] = round(sampler.peaks["broker"] / 2**20, 1)
        return out


def log(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


def phase_raw(ctx: Context) -> dict[str, Any]:
    log(f"raw broker→paho subscriber: {SINGLE_N:,} messages")
    sub = Child(raw_subscriber_main, ctx.port, SINGLE_N)
    pub = publisher(PublishJob(ctx.port, "bench-raw-pub", ctx.targets("single"), "raw", SINGLE_N))
    meter = Meter(ctx)
    pub.go()
    got = sub.result(120)
    sent = pub.result(120)
    usage = meter.read(SINGLE_N)
    span = got["last"] - got["first"]
    return {
        "messages": SINGLE_N,
        "received": got["count"],
        "payload_bytes": round(pub.info["payload_bytes"], 1),
        "rate": got["count"] / span if span > 0 else float("nan"),
        "rate_from_first_publish": got["count"] / (got["last"] - sent["first_publish"]),
        "publisher_rate": sent["published"] / (sent["all_acked"] - sent["first_publish"]),
        "publisher_cpu_s": round(sent["cpu_s"], 3),
        "subscriber_cpu_s": round(got["cpu_s"], 3),
        "subscriber_cpu_us_per_message": round(got["cpu_s"] / max(1, got["count"]) * 1e6, 1),
        **usage,
    }


def background(ctx: Context, tag: str, seconds: float) -> Child:
    messages = int(BACKGROUND_RATE * seconds)
    job = PublishJob(
        ctx.port,
        f"bench-{tag}-bg",
        ctx.targets("latency"),
        f"{tag}bg",
        messages,
        rate=BACKGROUND_RATE,
    )
    return publisher(job)


async def _latency(ctx: Context, tag: str, channel: str) -> tuple[Emergencies, dict[str, Any]]:
    seconds = WARMUP_S + EMERGENCIES / EMERGENCY_RATE + 15
    bg = background(ctx, tag, seconds)
    meter = Meter(ctx)
    bg.go()
    await asyncio.sleep(WARMUP_S)
    emergencies = await drive_emergencies(
        ctx.url,
        ctx.port,
        ctx.homes["latency"],
        prefix=tag,
        count=EMERGENCIES,
        rate=EMERGENCY_RATE,
        channel=channel,
    )
    bg.stop()
    sent = await result_of(bg)
    usage = meter.read()
    return emergencies, {
        "background_rate": round(
            sent["published"] / (sent["last_publish"] - sent["first_publish"])
        ),
        "background_published": sent["published"],
        **usage,
    }


def phase_floor(ctx: Context) -> dict[str, Any]:
    log(
        f"latency floor: {EMERGENCIES} emergencies at {EMERGENCY_RATE:g}/s under"
        f" {BACKGROUND_RATE:,.0f} vitals/s → paho subscriber → INSERT+COMMIT+NOTIFY"
    )
    floor = Child(floor_subscriber_main, ctx.port, ctx.url)
    try:
        emergencies, usage = asyncio.run(_latency(ctx, "floor", FLOOR_CHANNEL))
    finally:
        floor.stop()
    counts = floor.result(30)
    return {**emergencies.summary(), "subscriber": counts, **usage}


async def _phase_single(ctx: Context, worker: Worker) -> dict[str, Any]:
    db = await asyncpg.connect(ctx.url)
    try:
        await truncate(db)
        job = PublishJob(ctx.port, "bench-single-pub", ctx.targets("single"), "single", SINGLE_N)
        pub = publisher(job)
        meter = Meter(ctx)
        pub.go()
        progress = await wait_stored(db, SINGLE_N, worker, limit_s=150)
        usage = meter.read(progress.stored)
        sent = await result_of(pub)
    finally:
        await db.close()
    elapsed = (progress.done_at or progress.samples[-1][0]) - sent["first_publish"]
    return {
        "messages": SINGLE_N,
        "stored": progress.stored,
        "complete": progress.stored >= SINGLE_N,
        "rate": progress.stored / elapsed,
        "steady_rate": progress.steady_rate(),
        "publisher_rate": sent["published"] / (sent["all_acked"] - sent["first_publish"]),
        **usage,
    }


async def _phase_batched(ctx: Context, worker: Worker) -> dict[str, Any]:
    db = await asyncpg.connect(ctx.url)
    messages = BATCH_EVENTS // BATCH
    try:
        await truncate(db)
        job = PublishJob(
            ctx.port, "bench-batch-pub", ctx.targets("batch"), "batch", messages, batch=BATCH
        )
        pub = publisher(job)
        meter = Meter(ctx)
        pub.go()
        progress = await wait_stored(db, BATCH_EVENTS, worker, limit_s=150)
        usage = meter.read(progress.stored)
        sent = await result_of(pub)
    finally:
        await db.close()
    elapsed = (progress.done_at or progress.samples[-1][0]) - sent["first_publish"]
    return {
        "events": BATCH_EVENTS,
        "messages": messages,
        "events_per_message": BATCH,
        "payload_bytes": round(pub.info["payload_bytes"], 1),
        "stored": progress.stored,
        "complete": progress.stored >= BATCH_EVENTS,
        "rate": progress.stored / elapsed,
        "steady_rate": progress.steady_rate(),
        "publish_s": round(sent["all_acked"] - sent["first_publish"], 3),
        **usage,
    }


async def _phase_latency(ctx: Context) -> dict[str, Any]:
    db = await asyncpg.connect(ctx.url)
    try:
        await truncate(db)
    finally:
        await db.close()
    emergencies, usage = await _latency(ctx, "lat", ALERT_CHANNEL)
    return {**emergencies.summary(), **usage}


async def _phase_overload(ctx: Context, worker: Worker, sustained: float) -> dict[str, Any]:
    db = await asyncpg.connect(ctx.url)
    try:
        await truncate(db)
        offered = OVERLOAD_FACTOR * sustained  # events/s, all publishers together
        per_publisher = offered / BATCH / OVERLOAD_PUBLISHERS  # messages/s
        messages = int(per_publisher * OVERLOAD_S)
        # Every 100th batch of each publisher goes to its first home, and carries that home's
        # emergency; the paced emergencies go to the other homes, so that the two kinds
        # never fold into one alert (de-duplication) and each can be counted.
        targets = ctx.targets("overload")
        buttons = ctx.buttons("overload", OVERLOAD_PUBLISHERS)
        jobs = [
            PublishJob(
                ctx.port,
                f"bench-overload-pub{k}",
                targets[k::OVERLOAD_PUBLISHERS],
                f"ovl{k}",
                messages,
                batch=BATCH,
                rate=per_publisher,
                buttons=buttons[k::OVERLOAD_PUBLISHERS],
                sos_every=OVERLOAD_SOS_EVERY,
            )
            for k in range(OVERLOAD_PUBLISHERS)
        ]
        pubs = [publisher(job) for job in jobs]
        rss_before = ctx.sampler.rss("worker") if ctx.sampler else 0
        meter = Meter(ctx)
        for pub in pubs:
            pub.go()
        count = int(OVERLOAD_S / OVERLOAD_EMERGENCY_EVERY_S)
        emergencies = await drive_emergencies(
            ctx.url,
            ctx.port,
            ctx.homes["overload"][OVERLOAD_PUBLISHERS:],
            prefix="ovlsos",
            count=count,
            rate=1 / OVERLOAD_EMERGENCY_EVERY_S,
            channel=ALERT_CHANNEL,
            settle_s=30,
        )
        sent = [await result_of(pub) for pub in pubs]
        published_messages = sum(s["published"] for s in sent)
        in_batch_ids = [
            f"{job.prefix}-sos-{i:07d}"
            for job, s in zip(jobs, sent, strict=True)
            for i in range(s["published"])
            if sos_in_batch(job, i)
        ]
        published_events = published_messages * BATCH
        published_vitals = published_events - len(in_batch_ids)
        acked_events = sum(s["acked"] for s in sent) * BATCH
        first = min(s["first_publish"] for s in sent)
        last = max(s["last_publish"] for s in sent)
        # Drained once the worker's bulk queue is empty and nothing has been added for 3 s.
        progress = await wait_stored(
            db,
            published_events + count,
            worker,
            limit_s=240,
            settle_s=3,
            drained=lambda: all(
                worker.gauge(f'eldercare_ingest_queue{{queue="{q}"}}') == 0
                for q in ("bulk", "storing")
            ),
        )
        usage = meter.read(progress.stored)
        ids = list(emergencies.published)
        rows = await db.fetchrow(
            "SELECT count(*) FILTER (WHERE event = 'vitals') AS vitals,"
            " count(*) FILTER (WHERE event = 'emergency' AND msg_id = ANY($1::text[])) AS sos,"
            " count(*) FILTER (WHERE event = 'emergency' AND msg_id = ANY($2::text[]))"
            " AS in_batch FROM telemetry.events",
            ids,
            in_batch_ids,
        )
        alerted = await db.fetchval(
            "SELECT count(DISTINCT details->>'msg_id') FROM telemetry.alerts"
            " WHERE kind = 'emergency' AND details->>'msg_id' = ANY($1::text[])",
            ids,
        )
        # An in-batch emergency of an elder whose alert is still open is counted on it (the
        # de-duplication window): every one is an occurrence of that elder's alerts.
        occurrences = await db.fetchval(
            "SELECT coalesce(sum(occurrences), 0) FROM telemetry.alerts"
            " WHERE kind = 'emergency' AND elder_id = ANY($1::uuid[])",
            [h.elder_id for h in ctx.homes["overload"][:OVERLOAD_PUBLISHERS]],
        )
    finally:
        await db.close()
    stored_vitals = int(rows["vitals"])
    drained_at = progress.last_change or last
    counters: dict[str, float] = usage.get("worker_counters", {})
    # Redelivered vitals only: the bulk process's safety-net duplicates are emergencies.
    duplicates = int(
        sum(
            v
            for k, v in counters.items()
            if k.startswith("eldercare_ingest_duplicates_total") and 'source="redelivery"' in k
        )
    )
    shed_counted = counter_sum(counters, "eldercare_ingest_shed_total")
    shed = published_vitals - stored_vitals - duplicates
    return {
        "offered_events_per_s": round(offered),
        "achieved_publish_events_per_s": round(published_events / (last - first)),
        "publishers": OVERLOAD_PUBLISHERS,
        "published_events": published_events,
        "published_vitals": published_vitals,
        "broker_acked_events": acked_events,
        "stored_events": stored_vitals,
        "duplicates": duplicates,
        "shed_events": shed,
        "shed_share": round(shed / max(1, published_events), 3),
        "metrics_available": bool(counters) or bool(worker.counters()),
        "shed_counter_messages": int(shed_counted),
        "shed_counter_events": int(shed_counted) * BATCH,
        "shed_by_worker": int(shed_counted) * BATCH == shed and shed > 0,
        "drain_s_after_last_publish": round(drained_at - last, 1),
        "queue_max_messages": worker.queue_max,
        "broker_max_inflight": MQTT_MAX_INFLIGHT,
        "worker_alive": worker.alive(),
        "worker_rss_before_mb": round(rss_before / 2**20, 1),
        "emergencies": count,
        "emergencies_stored": int(rows["sos"]),
        "emergencies_alerted": int(alerted),
        "in_batch_emergencies": len(in_batch_ids),
        "in_batch_emergencies_stored": int(rows["in_batch"]),
        "emergency_occurrences": int(occurrences),
        "emergency_latency_ms": percentiles(emergencies.latencies()),
        **usage,
    }


def counter_sum(counters: dict[str, float], name: str) -> float:
    return sum(v for k, v in counters.items() if k.split("{", 1)[0] == name)


def run(opts: Options | None = None) -> Outcome:
    from bench.common import database, scratch_dir
    from shared.embedded import EmbeddedBroker

    with scratch_dir("eldercare-bench-ingest-") as work:
        log("starting PostgreSQL and migrating")
        with database(work) as url:
            broker = EmbeddedBroker(work / "broker")
            if broker.kind != "mosquitto":
                raise RuntimeError("the ingest benchmark needs the mosquitto binary")
            broker.start()
            try:
                return _run(url, work, broker)
            finally:
                broker.stop()


def _run(url: str, work: Path, broker: EmbeddedBroker) -> Outcome:
    from bench.common import write_result

    started = time.perf_counter()
    log(f"registering {4 * HOMES_PER_PHASE} homes through the registry API")
    tags = ("single", "batch", "latency", "overload")
    homes = register_homes(url, work, dict.fromkeys(tags, HOMES_PER_PHASE))
    asyncio.run(_execute(url, _FLOOR_TABLES))
    postmaster = int((work / "pg" / "postmaster.pid").read_text().split()[0])
    assert broker.process is not None
    broker_pid = broker.process.pid
    ctx = Context(
        url=url,
        port=broker.port,
        work=work,
        homes=homes,
        cpu=CpuMeter(broker_pid, postmaster),
        worker_env={
            "ELDERCARE_DATABASE_URL": url,
            "ELDERCARE_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}",
            "ELDERCARE_LOG_LEVEL": "WARNING",
            "ELDERCARE_JWT_SECRET": JWT_SECRET,
            "ELDERCARE_DATA_DIR": str(work / "data"),
        },
    )
    results: dict[str, dict[str, Any]] = {}
    try:
        results["raw"] = phase_raw(ctx)
        results["floor"] = phase_floor(ctx)

        log("starting the ingest worker")
        worker = ctx.start_worker()
        worker_cmd = " ".join(["python", *worker.cmd[1:]])
        subscribed_s = asyncio.run(wait_subscribed(url, ctx.port, homes["single"][0], worker))
        log(f"worker subscribed and storing after {subscribed_s:.1f} s")

        log(f"ingest single-event: {SINGLE_N:,} messages")
        results["single"] = asyncio.run(_phase_single(ctx, worker))
        log(f"ingest batched: {BATCH_EVENTS:,} events in {BATCH}-event batches")
        results["batched"] = asyncio.run(_phase_batched(ctx, worker))
        log(
            f"emergency latency: {EMERGENCIES} at {EMERGENCY_RATE:g}/s under"
            f" {BACKGROUND_RATE:,.0f} vitals/s"
        )
        # The latency and overload phases run the deployment shape recommended for
        # emergencies: bulk and urgent paths in separate processes (`eldercare ingest --only`).
        worker = ctx.start_worker(split=True)
        asyncio.run(wait_subscribed(url, ctx.port, homes["latency"][0], worker))
        wait_link(ctx.urgent_worker, "urgent")
        results["latency"] = asyncio.run(_phase_latency(ctx))

        sustained = results["batched"]["rate"]
        log(
            f"overload: ~{OVERLOAD_FACTOR * sustained:,.0f} events/s for {OVERLOAD_S:g} s"
            f" (shipped settings: queue bound {SHIPPED.ingest_queue_max:,} messages, broker"
            f" in-flight window {MQTT_MAX_INFLIGHT:,}), an emergency every"
            f" {OVERLOAD_EMERGENCY_EVERY_S:g} s and in every {OVERLOAD_SOS_EVERY}th batch"
        )
        worker = ctx.start_worker(split=True)
        wait_link(ctx.urgent_worker, "urgent")
        asyncio.run(wait_subscribed(url, ctx.port, homes["overload"][0], worker))
        results["overload"] = asyncio.run(_phase_overload(ctx, worker, sustained))
    finally:
        ctx.stop_worker()

    figures, summary = report(results)
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    path = write_result(
        NAME,
        {
            "options": {
                "single_messages": SINGLE_N,
                "batch_events": BATCH_EVENTS,
                "events_per_batch": BATCH,
                "homes_per_phase": HOMES_PER_PHASE,
                "background_vitals_per_s": BACKGROUND_RATE,
                "emergencies": EMERGENCIES,
                "emergency_rate": EMERGENCY_RATE,
                "overload_s": OVERLOAD_S,
                "overload_factor": OVERLOAD_FACTOR,
                "overload_queue_max": SHIPPED.ingest_queue_max,
                "broker_max_inflight": MQTT_MAX_INFLIGHT,
                "scale": SCALE,
                "worker_cmd": worker_cmd,
                "worker_no_monitor": no_monitor_flag(),
                "broker": "mosquitto",
                "postgres": "embedded, durable (fsync on)",
            },
            "figures": figures,
            "summary": summary,
            "phases": results,
        },
    )
    return Outcome(NAME, [], summary, figures, path)


async def _execute(url: str, sql: str) -> None:
    db = await asyncpg.connect(url)
    try:
        await db.execute(sql)
    finally:
        await db.close()


def _ok(flag: bool) -> str:
    return "OK" if flag else "MISSED"


def report(results: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    raw, floor, single = results["raw"], results["floor"], results["single"]
    batched, latency, overload = results["batched"], results["latency"], results["overload"]
    single_ratio = single["rate"] / raw["rate"]
    batch_ratio = batched["rate"] / raw["rate"]
    lat_ms, floor_ms = latency["latency_ms"], floor["latency_ms"]
    p99, floor_p99 = lat_ms.get("p99", float("nan")), floor_ms.get("p99", float("nan"))
    emergencies_ok = (
        overload["emergencies_stored"] == overload["emergencies_alerted"] == overload["emergencies"]
        and overload["in_batch_emergencies_stored"] == overload["in_batch_emergencies"]
        and overload["emergency_occurrences"] == overload["in_batch_emergencies"]
    )
    figures: dict[str, Any] = {
        "raw_msgs_per_s": round(raw["rate"]),
        "single_events_per_s": round(single["rate"]),
        "single_ratio": round(single_ratio, 3),
        "single_ratio_target": SINGLE_RATIO_TARGET,
        "single_ok": single["complete"] and single_ratio >= SINGLE_RATIO_TARGET,
        "batched_events_per_s": round(batched["rate"]),
        "batched_steady_events_per_s": round(batched["steady_rate"]),
        "batched_ratio_vs_raw": round(batch_ratio, 3),
        "batched_target": BATCH_TARGET,
        "batched_ok": batched["complete"] and batched["rate"] >= BATCH_TARGET,
        "batched_worker_rss_max_mb": batched.get("worker_rss_max_mb"),
        "emergency_latency_ms": lat_ms,
        "floor_latency_ms": floor_ms,
        "emergency_p99_ratio": round(p99 / floor_p99, 2) if floor_p99 else None,
        "emergency_p99_target_ms": EMERGENCY_P99_TARGET_MS,
        "emergency_ok": latency["committed"] == latency["published"]
        and p99 <= EMERGENCY_P99_TARGET_MS,
        "overload_worker_alive": overload["worker_alive"],
        "overload_worker_rss_max_mb": overload.get("worker_rss_max_mb"),
        "overload_emergencies_ok": emergencies_ok,
        "overload_shed_events": overload["shed_events"],
        "overload_shed_by_worker": overload["shed_by_worker"],
    }
    rows = [
        ("raw broker→paho sub", f"{raw['rate']:,.0f} msg/s", "baseline", "", ""),
        (
            "ingest single-event",
            f"{single['rate']:,.0f} ev/s",
            f"{single_ratio:.2f} × raw",
            f"≥ {SINGLE_RATIO_TARGET:.2f}",
            _ok(figures["single_ok"]),
        ),
        (
            f"ingest batched ×{BATCH}",
            f"{batched['rate']:,.0f} ev/s",
            f"{batch_ratio:.2f} × raw",
            f"≥ {BATCH_TARGET:,.0f}/s",
            _ok(figures["batched_ok"]),
        ),
        (
            "floor p50 / p99",
            f"{floor_ms.get('p50', 0):.2f} / {floor_p99:.2f} ms",
            "baseline",
            "",
            "",
        ),
        (
            "emergency p50 / p99",
            f"{lat_ms.get('p50', 0):.2f} / {p99:.2f} ms",
            f"p99 {p99 / floor_p99:.1f} × floor",
            f"p99 ≤ {EMERGENCY_P99_TARGET_MS:g} ms",
            _ok(figures["emergency_ok"]),
        ),
    ]
    table = [f"{'phase':<22} {'figure':>22} {'vs baseline':>18} {'target':>16} {'':>6}"]
    table.append("-" * len(table[0]))
    table += [f"{a:<22} {b:>22} {c:>18} {d:>16} {e:>6}" for a, b, c, d, e in rows]

    def cpu(r: dict[str, Any]) -> str:
        share = r.get("worker_cpu_share")
        per = r.get("worker_cpu_us_per_event")
        parts = [f"worker CPU {share:.0%}" if share is not None else "worker —"]
        if per is not None:
            parts.append(f"{per:,.0f} µs/event")
        parts.append(f"broker {r['broker_cpu_share']:.0%}, postgres {r['postgres_cpu_share']:.0%}")
        return ", ".join(parts)

    if overload["metrics_available"]:
        agree = overload["shed_counter_events"] == overload["shed_events"]
        verdict = (
            "agrees: the worker shed them all" if agree else "differs: the broker dropped the rest"
        )
        shed_note = (
            f"  worker /metrics: eldercare_ingest_shed_total +{overload['shed_counter_messages']:,}"
            f" messages × {BATCH} = {overload['shed_counter_events']:,} events"
            f" ({verdict});"
            f" duplicates from eldercare_ingest_duplicates_total"
        )
    else:
        shed_note = (
            "  (no worker /metrics: every msg_id is unique, so duplicates are taken as 0, and what"
            " is missing was shed by the worker's bounded queue or dropped by the broker)"
        )
    publisher_bound = raw["publisher_rate"] < 1.15 * raw["rate"]
    cost_ratio = raw["subscriber_cpu_us_per_message"] / single.get(
        "worker_cpu_us_per_event", float("nan")
    )
    figures["single_cpu_cost_ratio"] = round(cost_ratio, 3)
    summary = [
        *table,
        "",
        f"raw: {raw['received']:,}/{raw['messages']:,} received, {raw['payload_bytes']:.0f}-byte"
        f" payloads; publisher alone {raw['publisher_rate']:,.0f} msg/s; subscriber"
        f" {raw['subscriber_cpu_us_per_message']:.0f} µs CPU/msg; {cpu(raw)}",
        f"single: {single['stored']:,}/{single['messages']:,} stored"
        f" (steady {single['steady_rate']:,.0f} ev/s between 10 % and 90 %), publisher alone"
        f" {single['publisher_rate']:,.0f} msg/s; {cpu(single)};"
        f" worker RSS max {single.get('worker_rss_max_mb', 0):.0f} MB",
        f"  CPU per message: raw subscriber {raw['subscriber_cpu_us_per_message']:.0f} µs vs"
        f" worker {single.get('worker_cpu_us_per_event', float('nan')):.0f} µs = ratio"
        f" {cost_ratio:.2f} (how the ingest would compare if the consumer, not the publisher,"
        " were saturated)",
        *(
            [
                "  note: the raw baseline is publisher-bound (one paho publisher, 1 000 in"
                " flight: paho scans every in-flight message on each PUBACK), so the rate ratio"
                " shows that the ingest keeps up with it, not how much headroom it has"
            ]
            if publisher_bound
            else []
        ),
        f"batched: {batched['stored']:,}/{batched['events']:,} stored (steady"
        f" {batched['steady_rate']:,.0f} ev/s), published in {batched['publish_s']:.1f} s;"
        f" {cpu(batched)}; worker RSS max {batched.get('worker_rss_max_mb', 0):.0f} MB",
        f"latency: {latency['committed']}/{latency['published']} emergencies alerted, p50"
        f" {lat_ms.get('p50', 0):.2f} p90 {lat_ms.get('p90', 0):.2f} p99 {p99:.2f} max"
        f" {lat_ms.get('max', 0):.2f} ms under {latency['background_rate']:,} vitals/s; floor"
        f" p50 {floor_ms.get('p50', 0):.2f} p99 {floor_p99:.2f} max {floor_ms.get('max', 0):.2f}"
        f" ms ({floor['committed']}/{floor['published']}); {latency['over_target']} emergencies"
        f" over {EMERGENCY_P99_TARGET_MS:g} ms (floor {floor['over_target']}); {cpu(latency)}",
        f"overload: offered {overload['offered_events_per_s']:,} ev/s (achieved"
        f" {overload['achieved_publish_events_per_s']:,}) for {OVERLOAD_S:g} s from"
        f" {OVERLOAD_PUBLISHERS} publishers, shipped settings: worker queue bound"
        f" {overload['queue_max_messages']:,} messages, broker in-flight window"
        f" {overload['broker_max_inflight']:,}",
        f"  worker alive afterwards: {overload['worker_alive']}; RSS"
        f" {overload['worker_rss_before_mb']:.0f} MB before, max"
        f" {overload.get('worker_rss_max_mb', 0):.0f} MB (broker max"
        f" {overload.get('broker_rss_max_mb', 0):.0f} MB)",
        f"  emergencies: {overload['emergencies_stored']}/{overload['emergencies']} stored,"
        f" {overload['emergencies_alerted']}/{overload['emergencies']} alerted; in batches"
        f" {overload['in_batch_emergencies_stored']}/{overload['in_batch_emergencies']} stored;"
        f" and alerted ({overload['emergency_occurrences']} occurrences)"
        f" {_ok(emergencies_ok)}; publish→alert under overload p50"
        f" {overload['emergency_latency_ms'].get('p50', 0):.1f} max"
        f" {overload['emergency_latency_ms'].get('max', 0):.1f} ms",
        f"  shed = published vitals − stored − redelivered = {overload['published_vitals']:,} −"
        f" {overload['stored_events']:,} − {overload['duplicates']:,} ="
        f" {overload['shed_events']:,} events ({overload['shed_share']:.0%}); the backlog"
        f" drained {overload['drain_s_after_last_publish']:.1f} s after the last publish",
        shed_note,
    ]
    for name in ("single", "batched", "latency"):
        counters = results[name].get("worker_counters", {})
        shed = counter_sum(counters, "eldercare_ingest_shed_total")
        dead = counter_sum(counters, "eldercare_ingest_dead_letters_total")
        if shed or dead:
            summary.append(
                f"warning: {name}: the worker shed {shed:,.0f} and dead-lettered {dead:,.0f}"
                " messages"
            )
    return figures, summary
