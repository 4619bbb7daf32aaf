"""Incidents: what goes wrong in a home, when, and what the devices then say.

Random incidents arrive as a Poisson process per home (``incident_rate`` per simulated hour)
and their kind is drawn by ``WEIGHTS``. Each one first emits an ``incident`` marker (counted
by the runner and the tests, never published), then acts on the simulation: the elder
presses the button, falls and lies still, has abnormal vitals for a while or stops moving;
or the gateway misbehaves (drops out, re-sends, delivers out of order), which the stream
layer carries out.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from services.emulator.options import EmulatorOptions

if TYPE_CHECKING:
    from services.emulator.model import HomeSim

WEIGHTS: dict[str, float] = {
    "emergency": 0.20,
    "fall": 0.10,
    "abnormal_vitals": 0.20,
    "inactivity": 0.10,
    "gateway_dropout": 0.10,
    "duplicate": 0.15,
    "out_of_order": 0.15,
}
KINDS = tuple(WEIGHTS)

# Forced values while an abnormal-vitals episode lasts (noise is added around them).
ABNORMAL_PROFILES: dict[str, dict[str, float]] = {
    "tachycardia": {"heart_rate": 138},
    "bradycardia": {"heart_rate": 38},
    "hypoxia": {"spo2": 84, "heart_rate": 108},
    "hypertension": {"systolic": 198, "diastolic": 114},
    "fever": {"temp_c": 39.1, "heart_rate": 104},
    "tachypnea": {"resp_rate": 31, "heart_rate": 100},
}


def next_at(rng: random.Random, now: float, options: EmulatorOptions) -> float:
    return now + rng.expovariate(options.incident_rate / 3600)


def pick(rng: random.Random) -> str:
    return rng.choices(KINDS, weights=[WEIGHTS[k] for k in KINDS])[0]


def fire(sim: HomeSim, kind: str) -> None:
    try:
        handler = _HANDLERS[kind]
    except KeyError:
        raise ValueError(f"unknown incident {kind!r}; known: {', '.join(KINDS)}") from None
    sim.emit("gateway", "incident", {"kind": kind})
    handler(sim, sim.chance)


def _emergency(sim: HomeSim, rng: random.Random) -> None:
    sim.emit("button", "emergency", {"button": rng.choice(["pendant", "bedside", "bathroom"])})


def _fall(sim: HomeSim, rng: random.Random) -> None:
    sim.emit("fall", "fall", {"confidence": round(rng.uniform(0.7, 0.99), 2)})
    sim.frozen_until = max(sim.frozen_until, sim.now + rng.uniform(1200, 3600))
    if rng.random() < 0.5:  # some manage to reach the pendant
        sim.schedule(sim.now + rng.uniform(60, 300), _press, sim, "pendant")


def _press(sim: HomeSim, button: str) -> None:
    sim.emit("button", "emergency", {"button": button})


def _abnormal_vitals(sim: HomeSim, rng: random.Random) -> None:
    profile = ABNORMAL_PROFILES[rng.choice(sorted(ABNORMAL_PROFILES))]
    sim.abnormal = dict(profile)
    sim.abnormal_until = sim.now + rng.uniform(1200, 3600)
    _measure(sim)
    for k in range(1, int((sim.abnormal_until - sim.now) // 600) + 1):
        sim.schedule(sim.now + 600 * k, _measure, sim)  # a worried family re-checks


def _measure(sim: HomeSim) -> None:
    """One reading that shows the abnormal values: the radar for breathing, else the cuff."""
    if "resp_rate" in sim.abnormal:
        names: tuple[str, ...] = ("heart_rate", "resp_rate")
        role = "radar"
    else:
        names = ("systolic", "diastolic", "heart_rate", "spo2", "temp_c")
        role = "cuff"
    sim.emit(role, "vitals", {k: sim.vital(k) for k in names})


def _inactivity(sim: HomeSim, rng: random.Random) -> None:
    # The incident is an absence: no motion, no routine, for hours. Vitals and heartbeats go on.
    sim.frozen_until = max(sim.frozen_until, sim.now + rng.uniform(3 * 3600, 6 * 3600))


def _gateway_dropout(sim: HomeSim, rng: random.Random) -> None:
    if sim.now < sim.offline_until:
        return  # already off the air
    sim.offline_until = sim.now + rng.uniform(120, 1200)
    sim.emit("gateway", "dropout", {})
    sim.schedule(sim.offline_until, sim.emit, "gateway", "reconnect", {})


def _duplicate(sim: HomeSim, rng: random.Random) -> None:
    sim.emit("gateway", "duplicate", {})


def _out_of_order(sim: HomeSim, rng: random.Random) -> None:
    sim.emit("gateway", "out_of_order", {})


_HANDLERS = {
    "emergency": _emergency,
    "fall": _fall,
    "abnormal_vitals": _abnormal_vitals,
    "inactivity": _inactivity,
    "gateway_dropout": _gateway_dropout,
    "duplicate": _duplicate,
    "out_of_order": _out_of_order,
}
