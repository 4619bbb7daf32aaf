"""The loop: take ``generate``'s stream, send each publish when it is due, report progress.

Two clocks. By default simulated time runs at ``speed`` × real time, so a publish is due when
real time catches up with its simulated time. With ``rate``, the stream is drained at exactly
``rate`` messages per second (control items do not count) and the simulated clock runs as
fast as that needs. The due-time functions are pure, so the pacing is tested without a clock.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from services.emulator.mqtt import Counters, Credentials, Pool
from services.emulator.options import LOCAL_TZ, EmulatorOptions, parse_mqtt_url
from services.emulator.stream import CONTROL_KINDS, Publish, generate

PROGRESS_EVERY_S = 0.5  # on a terminal; a plain log gets a line every LOG_EVERY_S
LOG_EVERY_S = 10.0
MAX_SLEEP_S = 0.05  # wake at least this often to notice the stop event and update progress


def speed_due(at: float, sim_start: float, speed: float) -> float:
    """Real seconds after the start when a publish of simulated time ``at`` is due."""
    return max(at - sim_start, 0.0) / speed


def rate_due(index: int, rate: float) -> float:
    """Real seconds after the start when message number ``index`` (from 0) is due."""
    return index / rate


def rate_schedule(rate: float, seconds: float) -> list[float]:
    """Due times of every message in the first ``seconds``: exactly ``rate`` per second."""
    count = round(rate * seconds)
    return [rate_due(i, rate) for i in range(count)]


@dataclass
class Stats:
    sent: int = 0
    acked: int = 0
    errors: int = 0
    incidents: int = 0
    garbage: int = 0
    sim_time: float = 0.0
    elapsed: float = 0.0
    last_error: str | None = None


class Progress:
    """One status line, rewritten in place on a terminal (``\\r``), periodic lines otherwise."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.tty = bool(out and out.isatty())
        self.last_print = 0.0
        self.last_sent = 0
        self.last_t = time.monotonic()
        self.rate = 0.0

    def line(self, s: Stats, c: Counters) -> str:
        sim = datetime.fromtimestamp(s.sim_time, LOCAL_TZ).strftime("%m-%d %H:%M")
        avg = c.sent / s.elapsed if s.elapsed > 0 else 0.0
        return (
            f"emulator: {c.sent} sent, {c.acked} acked, {self.rate:.0f} msg/s "
            f"(avg {avg:.0f}), sim {sim}, {s.incidents} incidents, {s.garbage} garbage, "
            f"{c.errors} errors"
        )

    def update(self, s: Stats, c: Counters, *, final: bool = False) -> None:
        now = time.monotonic()
        every = PROGRESS_EVERY_S if self.tty else LOG_EVERY_S
        if self.out is None or (not final and now - self.last_print < every):
            return
        if now > self.last_t:
            self.rate = (c.sent - self.last_sent) / (now - self.last_t)
        self.last_sent, self.last_t, self.last_print = c.sent, now, now
        text = self.line(s, c)
        if self.tty:
            self.out.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self.out.write(text + "\n")
        self.out.flush()


def paced(stream: Iterable[Publish], options: EmulatorOptions) -> Iterator[tuple[float, Publish]]:
    """(due seconds after the start, publish) for every item of the stream."""
    start = options.start.timestamp()
    index = 0
    for p in stream:
        if options.rate is None:
            yield speed_due(p.at, start, options.speed), p
        else:
            yield rate_due(index, options.rate), p
            index += p.kind not in CONTROL_KINDS


def emulate(
    options: EmulatorOptions,
    *,
    credentials: dict[str, Credentials] | None = None,
    stop: threading.Event | None = None,
    out: TextIO | None = sys.stderr,
) -> Stats:
    """Connect every gateway, send the stream until ``duration`` or ``stop``, then close."""
    stop = stop or threading.Event()
    counters = Counters()
    pool = Pool(parse_mqtt_url(options.mqtt_url), counters)
    stats = Stats(sim_time=options.start.timestamp())
    progress = Progress(out if options.progress else None)
    credentials = credentials or {}
    stream = generate(options)
    t0 = time.monotonic()
    try:
        for n, (due, p) in enumerate(paced(stream, options)):
            while True:
                elapsed = time.monotonic() - t0
                if stop.is_set() or (options.duration is not None and elapsed >= options.duration):
                    return stats
                if elapsed >= due:
                    break
                _snapshot(stats, counters, elapsed)
                progress.update(stats, counters)
                time.sleep(min(due - elapsed, MAX_SLEEP_S))
            _dispatch(pool, p, stats, credentials)
            stats.sim_time = p.at
            if n % 256 == 0:  # at high rates the loop rarely sleeps
                _snapshot(stats, counters, time.monotonic() - t0)
                progress.update(stats, counters)
    finally:
        pool.close()
        _snapshot(stats, counters, time.monotonic() - t0)
        progress.update(stats, counters, final=True)
    return stats


def _dispatch(pool: Pool, p: Publish, stats: Stats, credentials: dict[str, Credentials]) -> None:
    if p.kind == "online":
        if p.gateway_id not in pool.links:
            pool.add(p.gateway_id, credentials.get(p.gateway_id))
        pool.connect(p.gateway_id)  # connecting publishes the retained ``online`` itself
    elif p.kind == "dropout":
        pool.dropout(p.gateway_id)
    elif p.kind == "incident":
        stats.incidents += 1
    else:
        if p.kind == "garbage":
            stats.garbage += 1
        pool.publish(p.gateway_id, p.topic, p.payload, p.qos, p.retain)


def _snapshot(stats: Stats, counters: Counters, elapsed: float) -> None:
    stats.sent, stats.acked = counters.sent, counters.acked
    stats.errors, stats.last_error = counters.errors, counters.last_error
    stats.elapsed = elapsed
