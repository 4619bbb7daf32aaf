"""``generate(options)``: the whole emulation as a deterministic stream of MQTT publishes.

No I/O and no wall clock: each home's simulation is turned into what its gateway would put
on the wire (single messages or batches, a backlog after a dropout, duplicates, late
messages, garbage), and the homes are merged in simulated-time order. The runner only paces
and sends; unit tests read the stream directly.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from operator import attrgetter
from typing import Any, NamedTuple

from services.emulator.model import Home, HomeSim, Reading, build_homes, rng_for, run_tag
from services.emulator.options import EmulatorOptions
from services.emulator.payloads import (
    batch_topic,
    device_topic,
    encode,
    format_ts,
    garbage,
    status_topic,
)

# Kinds that are actions for the runner, not messages to publish as they are:
#   online   (re)connect; the connection itself publishes this retained payload
#   dropout  drop the TCP connection without DISCONNECT, so the broker fires the will
#   incident a marker for counting (``reason`` = the incident kind)
CONTROL_KINDS = frozenset({"online", "dropout", "incident"})
# Messages: event, batch, garbage (``reason`` says why it is invalid), duplicate (an earlier
# message again, same msg_id) and out_of_order (a heartbeat sent after a newer one).
MESSAGE_KINDS = frozenset({"event", "batch", "garbage", "duplicate", "out_of_order"})
NEVER_BATCHED = frozenset({"emergency", "fall"})  # sent alone, at once
BACKLOG_LIMIT = 5000  # a gateway's buffer while off the air; the oldest are lost beyond it


class Publish(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: str
    gateway_id: str = ""
    at: float = 0.0  # simulated epoch seconds
    reason: str | None = None


class Item(NamedTuple):
    """One contract message before it is put on the wire alone or in a batch."""

    device_id: str
    event: str
    body: dict[str, Any]  # msg_id, ts and the event's fields


class GatewayStream:
    """What one home's gateway publishes, in time order."""

    def __init__(self, home: Home, options: EmulatorOptions) -> None:
        self.home, self.options = home, options
        for device in home.devices.values():
            device.run = run_tag(options.start)
        self.sim = HomeSim(home, options)
        self.gw = home.gateway_id
        self.junk = rng_for(home.seed, home.index, "garbage")
        self.delivery = rng_for(home.seed, home.index, "delivery")
        self.sensors = sorted(d.device_id for d in home.devices.values() if d.role != "gateway")
        self.offline = False
        self.backlog: deque[Item] = deque(maxlen=BACKLOG_LIMIT)
        self.pending: list[Item] = []  # the batch being filled
        self.pending_since = 0.0
        self.hold_next = False
        self.duplicate_next = False
        self.held: dict[str, Item] = {}  # device_id → heartbeat held back (out of order)
        self.recent: deque[Publish] = deque(maxlen=32)
        self.out: list[Publish] = []

    def __iter__(self) -> Iterator[Publish]:
        yield Publish(status_topic(self.gw), b"online", 1, True, "online", self.gw, self.sim.now)
        for reading in self.sim.readings():
            if self.pending and reading.at - self.pending_since >= self.options.batch_window_s:
                self._flush()
            self._handle(reading)
            yield from self.out
            self.out.clear()

    # --- readings → items / controls ------------------------------------------------------

    def _handle(self, r: Reading) -> None:
        now = r.at
        if r.event == "incident":
            self._put(status_topic(self.gw), b"", "incident", now, reason=r.fields["kind"])
        elif r.event == "dropout":
            self._flush()
            self.offline = True
            self._put(status_topic(self.gw), b"offline", "dropout", now, retain=True)
        elif r.event == "reconnect":
            self.offline = False
            self._put(status_topic(self.gw), b"online", "online", now, retain=True)
            backlog, self.backlog = list(self.backlog), deque(maxlen=BACKLOG_LIMIT)
            for item in backlog:
                self._send(item, now)
            self._flush()
        elif r.event == "duplicate":
            if self.recent and not self.offline:
                again = self.delivery.choice(list(self.recent))
                self._put(again.topic, again.payload, "duplicate", now)
            else:  # nothing sent yet (or off the air): repeat the next message instead
                self.duplicate_next = True
        elif r.event == "out_of_order":
            self.hold_next = True
        else:
            device = self.home.devices[r.role]
            body = {"msg_id": device.next_msg_id(), "ts": format_ts(now), **r.fields}
            self._send(Item(device.device_id, r.event, body), now)

    def _send(self, item: Item, now: float) -> None:
        if self.offline:
            self.backlog.append(item)
            return
        if self.hold_next and item.event == "heartbeat" and item.device_id not in self.held:
            # Heartbeats come every interval, so the held one is released soon: right after
            # the next, newer heartbeat of the same device.
            self.hold_next = False
            self.held[item.device_id] = item
            return
        self._deliver(item, now, "event")
        late = self.held.pop(item.device_id, None)
        if late is not None:
            self._deliver(late, now, "out_of_order")

    def _deliver(self, item: Item, now: float, kind: str) -> None:
        if self.options.batch and item.event not in NEVER_BATCHED and kind == "event":
            if not self.pending:
                self.pending_since = now
            self.pending.append(item)
            if len(self.pending) >= self.options.batch_size:
                self._flush()
            return
        topic = device_topic(self.gw, item.device_id, item.event)
        self._put(topic, encode(item.body), kind, now)

    def _flush(self) -> None:
        if not self.pending:
            return
        at = self.sim.now
        batch = [{"device_id": i.device_id, "event": i.event, **i.body} for i in self.pending]
        self.pending = []
        self._put(batch_topic(self.gw), encode(batch), "batch", at)

    def _put(
        self,
        topic: str,
        payload: bytes,
        kind: str,
        at: float,
        *,
        retain: bool = False,
        reason: str | None = None,
    ) -> None:
        publish = Publish(topic, payload, 1, retain, kind, self.gw, at, reason)
        self.out.append(publish)
        if kind in ("event", "batch"):
            self.recent.append(publish)
            if self.duplicate_next:
                self.duplicate_next = False
                self.out.append(publish._replace(kind="duplicate"))
            if self.options.garbage_rate and self.junk.random() < self.options.garbage_rate:
                device = self.junk.choice(self.sensors)
                why, g_topic, g_payload = garbage(self.junk, self.gw, device, at)
                self.out.append(Publish(g_topic, g_payload, 1, False, "garbage", self.gw, at, why))


def generate(options: EmulatorOptions) -> Iterator[Publish]:
    """Every publish of every home, merged in simulated-time order; infinite."""
    streams = [iter(GatewayStream(home, options)) for home in build_homes(options)]
    return heapq.merge(*streams, key=attrgetter("at"))
