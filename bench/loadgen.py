"""HTTP/1.1 load generator, run in its own process: ``python -m bench.loadgen SPEC.json``.

httpx costs too much CPU per request to saturate a server on a 2-core machine, and ``wrk`` is
not guaranteed to be installed, so this is a raw asyncio protocol on uvloop: keep-alive
connections, pre-built request bytes, responses framed by ``Content-Length``. It runs in a
separate process so its CPU is never charged to the server under test.

Three modes:

``closed``  every connection sends its next request as soon as the previous response arrives
            (saturation throughput); requests completing inside the measurement window count.
``open``    a fixed offered rate: connection *k* sends its *i*-th request at
            ``t0 + (k + i·C) / rate``. Latency is taken from the *scheduled* send time, so a
            slow server cannot hide its queueing (no coordinated omission); the latency from the
            actual send time is reported alongside as ``service``.
``count``   each request of the spec is sent exactly once (e.g. creates), over all connections.

The result is one JSON object on stdout.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

Mode = Literal["closed", "open", "count"]

# uvloop's loop.time() has millisecond resolution; latencies need better.
clock = time.perf_counter

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


@dataclass
class Spec:
    port: int
    requests: list[bytes]
    connections: int
    mode: Mode
    duration: float = 0.0  # measurement window (closed, open)
    warmup: float = 0.0  # load before the window that is not measured (closed, open)
    rate: float = 0.0  # offered requests/s (open)
    grace: float = 5.0  # how long to wait for in-flight responses after the window (open)
    timeout: float = 120.0  # give up on a count run after this long
    host: str = "127.0.0.1"
    shuffle: bool = True  # pick requests at random (closed, open); count mode keeps order
    seed: int = 1

    def to_json(self) -> str:
        data = asdict(self)
        data["requests"] = [base64.b64encode(r).decode("ascii") for r in self.requests]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Spec:
        data = json.loads(text)
        data["requests"] = [base64.b64decode(r) for r in data["requests"]]
        return cls(**data)


@dataclass
class Recorder:
    latencies: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    total: int = 0  # every response, warm-up included (for CPU-per-request accounting)

    def record(self, latency: float, status: int, service: float | None = None) -> None:
        self.latencies.append(latency)
        if service is not None:
            self.service.append(service)
        self.statuses[status] += 1


class Connection(asyncio.Protocol):
    """One keep-alive connection; calls ``on_response(status)`` once per complete response."""

    def __init__(self, on_response: Callable[[int], None], on_lost: Callable[[str], None]):
        self.on_response = on_response
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.expect = -1  # total bytes of the response being read, -1 while in the header
        self.status = 0
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements, but does not subclass, asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        while True:
            if self.expect < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end])
                match = _CONTENT_LENGTH.search(head)
                if match is None:
                    self.fail("response without Content-Length")
                    return
                self.status = int(head[9:12])
                self.expect = end + 4 + int(match.group(1))
            if len(buf) < self.expect:
                return
            del buf[: self.expect]
            self.expect = -1
            self.on_response(self.status)

    def fail(self, reason: str) -> None:
        self.on_lost(reason)
        self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.on_lost(f"connection lost: {exc or 'closed by server'}")


class Runner:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.loop = asyncio.get_running_loop()
        self.rng = random.Random(spec.seed)
        self.rec = Recorder()
        self.pending: Iterator[bytes] = iter(spec.requests)
        self.active = 0
        self.done = asyncio.Event()
        self.incomplete = 0
        # Set in run(): start of the schedule, start and end of the measurement window.
        self.t0 = self.start = self.end = 0.0
        self.last_response = 0.0

    def pick(self) -> bytes | None:
        if self.spec.mode == "count":
            return next(self.pending, None)
        if self.spec.shuffle:
            return self.rng.choice(self.spec.requests)
        return self.spec.requests[self.rec.total % len(self.spec.requests)]

    def finished_one(self) -> None:
        self.active -= 1
        if self.active == 0:
            self.done.set()

    async def run(self) -> dict[str, Any]:
        spec = self.spec
        clients = [Client(self, k) for k in range(spec.connections)]
        await asyncio.gather(*(c.connect() for c in clients))
        self.active = len(clients)
        self.t0 = clock() + 0.02
        self.start = self.t0 + spec.warmup
        self.end = self.start + spec.duration
        cpu0, wall0 = time.process_time(), time.monotonic()
        for c in clients:
            c.begin()
        if spec.mode == "count":
            try:
                await asyncio.wait_for(self.done.wait(), timeout=spec.timeout)
            except TimeoutError:
                self.rec.errors["timed out"] += self.active
            window = self.last_response - self.t0
        elif spec.mode == "closed":
            await asyncio.sleep(self.end - clock())
            window = spec.duration
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), timeout=self.end - clock() + spec.grace)
            cutoff = clock()
            for c in clients:
                c.abandon(cutoff)
            window = spec.duration
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        for c in clients:
            c.conn.close()
        return self.summary(window, cpu / wall if wall else 0.0)

    def summary(self, window: float, cpu_share: float) -> dict[str, Any]:
        rec = self.rec
        n = len(rec.latencies)  # open mode: includes requests left unanswered
        answered = sum(rec.statuses.values())
        ok = sum(v for k, v in rec.statuses.items() if 200 <= k < 300)
        result: dict[str, Any] = {
            "mode": self.spec.mode,
            "connections": self.spec.connections,
            "window_s": round(window, 3),
            "requests": n,
            "ok": ok,
            "rps": answered / window if window > 0 else 0.0,
            "statuses": {str(k): v for k, v in sorted(rec.statuses.items())},
            "errors": dict(rec.errors),
            "total_responses": rec.total,
            "latency_ms": percentiles(rec.latencies),
            "loadgen_cpu_share": round(cpu_share, 3),
        }
        if self.spec.mode == "open":
            result["offered_rps"] = self.spec.rate
            result["incomplete"] = self.incomplete
            result["service_latency_ms"] = percentiles(rec.service)
        return result


class Client:
    """The per-connection state machine for the three modes."""

    def __init__(self, runner: Runner, index: int) -> None:
        self.runner = runner
        self.index = index
        self.conn = Connection(self.on_response, self.on_lost)
        self.sent_at = 0.0
        self.scheduled = 0.0
        self.in_flight = False
        self.seq = 0  # open mode: index into this connection's schedule
        self.finished = False

    async def connect(self) -> None:
        spec = self.runner.spec
        await self.runner.loop.create_connection(lambda: self.conn, spec.host, spec.port)

    def begin(self) -> None:
        if self.runner.spec.mode == "open":
            self.schedule_next()
        else:
            self.runner.loop.call_later(self.runner.t0 - clock(), self.send_next)

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.runner.finished_one()

    def send_next(self) -> None:
        request = self.runner.pick()
        if request is None:
            self.finish()
            return
        self.sent_at = clock()
        self.in_flight = True
        self.conn.send(request)

    def schedule_next(self) -> None:
        r = self.runner
        at = r.t0 + (self.index + self.seq * r.spec.connections) / r.spec.rate
        self.seq += 1
        if at >= r.end:
            self.finish()
            return
        self.scheduled = at
        delay = at - clock()
        if delay <= 0:
            self.send_next()
        else:
            r.loop.call_later(delay, self.send_next)

    def on_response(self, status: int) -> None:
        r = self.runner
        now = clock()
        self.in_flight = False
        r.rec.total += 1
        r.last_response = now
        mode = r.spec.mode
        if mode == "count":
            r.rec.record(now - self.sent_at, status)
            self.send_next()
        elif mode == "closed":
            if r.start <= now < r.end:
                r.rec.record(now - self.sent_at, status)
            if now < r.end:
                self.send_next()
        else:
            if self.scheduled >= r.start:
                # The loop's timers have millisecond resolution and may fire a little early:
                # latency runs from whichever came first, the schedule or the actual send.
                began = min(self.scheduled, self.sent_at)
                r.rec.record(now - began, status, service=now - self.sent_at)
            self.schedule_next()

    def abandon(self, cutoff: float) -> None:
        """Open mode: requests scheduled in the window but unanswered at the cutoff — in flight,
        or never sent because this connection fell behind — count with their latency so far."""
        r = self.runner
        if self.finished:
            return
        rate, connections = r.spec.rate, r.spec.connections
        slots = [self.scheduled]
        seq = self.seq
        while (at := r.t0 + (self.index + seq * connections) / rate) < r.end:
            slots.append(at)
            seq += 1
        for at in slots:
            if at >= r.start:
                r.incomplete += 1
                r.rec.latencies.append(cutoff - at)

    def on_lost(self, reason: str) -> None:
        self.runner.rec.errors[reason] += 1
        self.in_flight = False
        self.finish()


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    n = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(n - 1, max(0, int(q * n + 0.5) - 1))] * 1000, 3)

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ordered[-1] * 1000, 3),
        "mean": round(sum(ordered) / n * 1000, 3),
    }


async def _main(spec: Spec) -> dict[str, Any]:
    return await Runner(spec).run()


def main(argv: list[str]) -> None:
    import uvloop

    with open(argv[0], encoding="utf-8") as fh:
        spec = Spec.from_json(fh.read())
    result = uvloop.run(_main(spec))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
