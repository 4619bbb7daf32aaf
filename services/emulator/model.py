"""Homes, their devices and the elder's day, as a discrete-event simulation.

A ``HomeSim`` owns a clock-ordered queue of actions (get up, go to the kitchen, take a blood
pressure reading, send a heartbeat, …). Running an action changes the elder's state and emits
``Reading``s; ``HomeSim.readings()`` yields them in time order, forever. State transitions are
idempotent (getting into a bed one is already in emits nothing), so incidents that freeze the
elder (a fall, long inactivity) can simply skip actions without corrupting the routine.

All randomness comes from ``random.Random`` streams seeded with (seed, home index, purpose):
the same options give the same homes and the same days, and changing the incident rate does
not change anyone's routine.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

from services.emulator import incidents
from services.emulator.options import LOCAL_TZ, EmulatorOptions
from services.emulator.payloads import clamp_vital

ROOMS = ("bedroom", "bathroom", "kitchen", "living_room")
# role → registry device kind; a PIR per room.
ROLES: dict[str, str] = {
    "gateway": "gateway",
    "button": "emergency_button",
    "radar": "vital_monitor",  # bed/vital-sign radar: heart and breathing rate while in bed
    "cuff": "vital_monitor",  # blood-pressure cuff + oximeter + thermometer, twice a day
    "bed": "bed_sensor",
    "fall": "fall_sensor",
    "door": "door_sensor",
    **{f"pir_{room}": "motion_sensor" for room in ROOMS},
}


def rng_for(seed: int, index: int, purpose: str) -> random.Random:
    # str seeds hash with SHA-512 (version 2): stable across runs and Python processes.
    return random.Random(f"eldercare-emulator:{seed}:{index}:{purpose}")


@dataclass
class Device:
    device_id: str
    kind: str
    role: str
    battery: float = 100.0
    counter: int = 0
    # Names the run, so that a restarted emulator never repeats a message id the ingest has
    # already seen (it would drop the new reading as a redelivery for its whole dedup window).
    run: str = ""

    def next_msg_id(self) -> str:
        self.counter += 1
        if self.run:
            return f"{self.device_id}-{self.run}-{self.counter}"
        return f"{self.device_id}-{self.counter}"


def run_tag(start: datetime) -> str:
    """A short, stable name for a run started at ``start`` (base-36 epoch seconds)."""
    n = int(start.timestamp())
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


@dataclass(frozen=True)
class Baseline:
    """One elder's normal: resting vitals and habits."""

    heart_rate: float
    resp_rate: float
    spo2: float
    systolic: float
    diastolic: float
    temp_c: float
    wake_h: float  # local hour of getting up
    bed_h: float  # local hour of going to bed
    nocturia: float  # mean bathroom visits per night
    outing_p: float  # chance of a morning walk / market trip
    nap_p: float  # chance of an afternoon nap


def draw_baseline(rng: random.Random) -> Baseline:
    systolic = min(max(rng.gauss(132, 14), 105), 165)
    return Baseline(
        heart_rate=min(max(rng.gauss(70, 7), 55), 90),
        resp_rate=min(max(rng.gauss(16, 1.5), 12), 20),
        spo2=min(max(rng.gauss(96.5, 1.0), 94), 99),
        systolic=systolic,
        diastolic=min(max(systolic * 0.6 + rng.gauss(0, 5), 60), 95),
        temp_c=min(max(rng.gauss(36.5, 0.2), 36.0), 37.0),
        wake_h=rng.uniform(5.5, 7.0),
        bed_h=rng.uniform(20.75, 22.5),
        nocturia=rng.uniform(0.8, 2.5),
        outing_p=rng.uniform(0.3, 0.8),
        nap_p=rng.uniform(0.3, 0.9),
    )


@dataclass
class Home:
    index: int
    gateway_id: str
    devices: dict[str, Device]  # by role
    baseline: Baseline
    seed: int

    @property
    def gateway(self) -> Device:
        return self.devices["gateway"]

    def device_ids(self) -> set[str]:
        return {d.device_id for d in self.devices.values()}


def home_prefix(seed: int, index: int) -> str:
    return f"emu{seed}-h{index:04d}"


def build_home(seed: int, index: int) -> Home:
    rng = rng_for(seed, index, "home")
    prefix = home_prefix(seed, index)
    devices = {
        role: Device(
            device_id=f"{prefix}-{'gw' if role == 'gateway' else role.replace('_', '-')}",
            kind=kind,
            role=role,
            battery=100.0 if role == "gateway" else rng.uniform(55, 100),
        )
        for role, kind in ROLES.items()
    }
    return Home(
        index=index,
        gateway_id=devices["gateway"].device_id,
        devices=devices,
        baseline=draw_baseline(rng),
        seed=seed,
    )


def build_homes(options: EmulatorOptions) -> list[Home]:
    return [build_home(options.seed, i) for i in range(options.homes)]


class Reading(NamedTuple):
    """Something a home's devices say at ``at`` (epoch seconds).

    ``event`` is a contract event, or a control (``CONTROL_EVENTS``) that the stream turns
    into delivery behaviour; ``incident`` marks the start of an incident (``fields["kind"]``).
    """

    at: float
    role: str
    event: str
    fields: dict[str, Any]


CONTROL_EVENTS = frozenset({"incident", "dropout", "reconnect", "duplicate", "out_of_order"})


def local_at(day: date, hour: float) -> float:
    """Epoch seconds of ``hour`` (fractional, may exceed 24) local time on ``day``."""
    midnight = datetime.combine(day, time(0), LOCAL_TZ)
    return (midnight + timedelta(hours=hour)).timestamp()


@dataclass
class HomeSim:
    home: Home
    options: EmulatorOptions
    now: float = 0.0
    room: str | None = "bedroom"  # None: out of the house
    in_bed: bool = True
    frozen_until: float = 0.0  # fallen or inactive: no movement, no routine
    offline_until: float = 0.0  # gateway dropped out
    abnormal: dict[str, float] = field(default_factory=dict)  # vital → forced value
    abnormal_until: float = 0.0
    _queue: list[tuple[float, int, Callable[..., None], tuple]] = field(default_factory=list)
    _seq: int = 0
    _out: list[Reading] = field(default_factory=list)

    def __post_init__(self) -> None:
        i, seed = self.home.index, self.home.seed
        self.life = rng_for(seed, i, "life")
        self.noise = rng_for(seed, i, "vitals")
        self.chance = rng_for(seed, i, "incidents")
        self.now = self.options.start.timestamp()
        b = self.home.baseline
        local = self.options.start.astimezone(LOCAL_TZ)
        hour = local.hour + local.minute / 60
        if b.wake_h <= hour < b.bed_h:
            self.room, self.in_bed = "living_room", False
        self._plan_day(local.date() - timedelta(days=1))
        for role in self.home.devices:
            phase = self.life.uniform(0, self.options.heartbeat_s)
            # a gateway reports as soon as it is on the air; its sensors in their own phase
            self.schedule(self.now + (0.0 if role == "gateway" else phase), self._heartbeat, role)
        self.schedule(self.now + self.life.uniform(0, self.options.vitals_s), self._radar)
        self.schedule(self.now + self.life.uniform(60, 400), self._pir_tick)
        for k, kind in enumerate(self.options.force_incidents):
            self.schedule(self.now + 2 + k, incidents.fire, self, kind)
        if self.options.incident_rate > 0:
            self.schedule(incidents.next_at(self.chance, self.now, self.options), self._random)

    # --- the event loop ------------------------------------------------------------------

    def schedule(self, at: float, action: Callable[..., None], *args: Any) -> None:
        if at < self.now:  # planned before the simulation started
            return
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, action, args))

    def emit(self, role: str, event: str, fields: dict[str, Any]) -> None:
        self._out.append(Reading(self.now, role, event, fields))

    def readings(self) -> Iterator[Reading]:
        while self._queue:
            at, _, action, args = heapq.heappop(self._queue)
            self.now = at
            action(*args)
            if self._out:
                yield from self._out
                self._out.clear()

    @property
    def frozen(self) -> bool:
        return self.now < self.frozen_until

    # --- state transitions (idempotent) --------------------------------------------------

    def move_to(self, room: str) -> None:
        if self.frozen or self.room is None or room == self.room:
            return
        if self.in_bed:
            self.set_bed(False)
        old, self.room = self.room, room
        self.emit(f"pir_{room}", "motion", {"room": room, "state": "active"})
        self.schedule(self.now + self.life.uniform(30, 120), self._pir_idle, old)

    def set_bed(self, in_bed: bool) -> None:
        if self.frozen or self.room is None or in_bed == self.in_bed:
            return
        if in_bed and self.room != "bedroom":
            self.move_to("bedroom")
        self.in_bed = in_bed
        self.emit("bed", "bed", {"state": "in" if in_bed else "out"})

    def go_out(self) -> None:
        if self.frozen or self.room is None:
            return
        self.set_bed(False)
        self.move_to("living_room")
        self.emit("door", "door", {"state": "open"})
        self.schedule(self.now + self.life.uniform(8, 25), self._door_closed)
        self.schedule(self.now + self.life.uniform(30, 120), self._pir_idle, self.room)
        self.room = None

    def come_back(self) -> None:
        if self.room is not None:
            return
        self.emit("door", "door", {"state": "open"})
        self.schedule(self.now + self.life.uniform(8, 25), self._door_closed)
        self.room = "living_room"
        self.emit("pir_living_room", "motion", {"room": "living_room", "state": "active"})

    def _door_closed(self) -> None:
        self.emit("door", "door", {"state": "closed"})

    def _pir_idle(self, room: str) -> None:
        if room != self.room:
            self.emit(f"pir_{room}", "motion", {"room": room, "state": "idle"})

    def _pir_tick(self) -> None:
        """A PIR re-triggers every few minutes while someone moves about its room."""
        if self.room is not None and not self.in_bed and not self.frozen:
            self.emit(f"pir_{self.room}", "motion", {"room": self.room, "state": "active"})
        self.schedule(self.now + self.life.uniform(180, 480), self._pir_tick)

    # --- the day ---------------------------------------------------------------------------

    def _plan_day(self, day: date) -> None:
        """Schedule one wake-to-wake cycle starting on ``day``, then the next one."""
        b, r = self.home.baseline, self.life
        wake = local_at(day, b.wake_h + r.gauss(0, 0.25))
        at = self.schedule
        at(wake, self.set_bed, False)
        at(wake + r.uniform(60, 300), self.move_to, "bathroom")
        at(wake + r.uniform(900, 1500), self.move_to, "kitchen")
        at(local_at(day, 8.2 + r.uniform(0, 0.6)), self._cuff)
        at(local_at(day, 8.0 + r.uniform(0, 0.5)), self.move_to, "living_room")
        if r.random() < b.outing_p:
            leave = local_at(day, 9.0 + r.uniform(0, 1.0))
            at(leave, self.go_out)
            at(leave + r.uniform(2400, 7200), self.come_back)
        at(local_at(day, 11.5 + r.uniform(0, 0.5)), self.move_to, "kitchen")
        at(local_at(day, 12.3 + r.uniform(0, 0.4)), self.move_to, "living_room")
        if r.random() < b.nap_p:
            nap = local_at(day, 13.0 + r.uniform(0, 0.5))
            at(nap, self.set_bed, True)
            at(nap + r.uniform(1800, 5400), self.move_to, "living_room")
        at(local_at(day, 15.0 + r.uniform(0, 1.0)), self.move_to, "bathroom")
        at(local_at(day, 15.3 + r.uniform(0, 1.0)), self.move_to, "living_room")
        at(local_at(day, 17.4 + r.uniform(0, 0.4)), self.move_to, "kitchen")
        at(local_at(day, 18.3 + r.uniform(0, 0.3)), self.move_to, "living_room")
        at(local_at(day, 19.8 + r.uniform(0, 0.4)), self._cuff)
        bedtime = local_at(day, b.bed_h + r.gauss(0, 0.25))
        at(bedtime - r.uniform(600, 1200), self.move_to, "bathroom")
        at(bedtime, self.set_bed, True)
        next_wake = local_at(day + timedelta(days=1), b.wake_h)
        for _ in range(_poisson(r, b.nocturia)):  # bathroom at night
            t = r.uniform(bedtime + 3600, next_wake - 1800)
            at(t, self.set_bed, False)
            at(t + r.uniform(20, 60), self.move_to, "bathroom")
            at(t + r.uniform(240, 600), self.set_bed, True)
        # max(): when the simulation starts after this point, plan the next day at once.
        at(max(next_wake - 3600, self.now), self._plan_day, day + timedelta(days=1))

    # --- devices ---------------------------------------------------------------------------

    def _heartbeat(self, role: str) -> None:
        device = self.home.devices[role]
        if role != "gateway":
            device.battery = max(device.battery - self.options.heartbeat_s / 86400 * 0.5, 1)
        rssi = -35 if role == "gateway" else self.noise.gauss(-68, 7)
        fields = {"battery": int(device.battery), "rssi": int(min(max(rssi, -120), 0))}
        self.emit(role, "heartbeat", fields)
        self.schedule(self.now + self.options.heartbeat_s, self._heartbeat, role)

    def vital(self, name: str, asleep: bool = False) -> int | float:
        b, n = self.home.baseline, self.noise
        if self.now < self.abnormal_until and name in self.abnormal:
            return clamp_vital(name, self.abnormal[name] + n.gauss(0, 1.5))
        value = {
            "heart_rate": b.heart_rate - 7 * asleep + n.gauss(0, 3),
            "resp_rate": b.resp_rate - 2 * asleep + n.gauss(0, 1),
            "spo2": min(b.spo2 + n.gauss(0, 0.7), 100),
            "systolic": b.systolic + n.gauss(0, 6),
            "diastolic": b.diastolic + n.gauss(0, 4),
            "temp_c": b.temp_c + n.gauss(0, 0.12),
        }[name]
        return clamp_vital(name, value)

    def _radar(self) -> None:
        if self.in_bed:
            fields = {k: self.vital(k, asleep=True) for k in ("heart_rate", "resp_rate")}
            self.emit("radar", "vitals", fields)
        self.schedule(self.now + self.options.vitals_s, self._radar)

    def _cuff(self) -> None:
        if self.room is None:
            return  # not at home to take the reading
        names = ("systolic", "diastolic", "heart_rate", "spo2", "temp_c")
        self.emit("cuff", "vitals", {k: self.vital(k) for k in names})

    def _random(self) -> None:
        incidents.fire(self, incidents.pick(self.chance))
        self.schedule(incidents.next_at(self.chance, self.now, self.options), self._random)


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
