"""Dispatch's policy figures, loaded from ``policy.yaml`` (or ``ELDERCARE_DISPATCH_POLICY``).

Every figure a rule uses — radius minutes per zone, speeds, detour factors, GPS tolerance,
the 1 h/day, 30 h/month and 3-kinds rules, KPI targets, the default escalation chain — comes
from here, so a district changes its policy by editing data, never code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import time
from functools import cache
from pathlib import Path
from typing import Any

import yaml

POLICY_FILE = Path(__file__).with_name("policy.yaml")
CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")


@dataclass(frozen=True)
class Travel:
    default_mode: dict[str, str]
    detour_factor: dict[str, float]
    speed_kmh: dict[str, dict[str, float]]
    max_plausible_kmh: float


@dataclass(frozen=True)
class Evv:
    gps_tolerance_m: float
    overlap_tolerance_s: int
    too_short_ratio: float
    too_long_ratio: float
    late_after_s: int
    future_skew_s: int
    max_backdate_days: int


@dataclass(frozen=True)
class Compliance:
    daily_minutes: int
    monthly_hours: int
    daily_living_kinds: int
    daily_living_category: str


@dataclass(frozen=True)
class Assignment:
    shift_start: time
    shift_end: time
    break_earliest: time
    break_latest: time
    break_minutes: int
    max_visits: int
    window_slack_minutes: int
    continuity_tolerance_minutes: int
    solver_timeout_s: int


@dataclass(frozen=True)
class Kpi:
    seconds: int
    target: float


@dataclass(frozen=True)
class DispatchPolicy:
    code: str
    version: int
    radius_minutes: dict[str, float]
    travel: Travel
    evv: Evv
    compliance: Compliance
    horizon_days: int
    assignment: Assignment
    kpis: dict[str, Kpi]
    responder_roles: frozenset[str]
    max_candidates: int
    arrival_timeout_s: int
    default_chain: dict[str, Any]
    notify_max_attempts: int
    notify_max_backoff_s: float

    def limit_minutes(self, zone: str | None) -> float:
        return float(self.radius_minutes.get(zone or "urban", self.radius_minutes["urban"]))


def _clock(value: str) -> time:
    return time.fromisoformat(value)


def parse(raw: dict[str, Any]) -> DispatchPolicy:
    a = raw["assignment"]
    return DispatchPolicy(
        code=raw["code"],
        version=int(raw["version"]),
        radius_minutes={k: float(v) for k, v in raw["radius_minutes"].items()},
        travel=Travel(
            default_mode=dict(raw["travel"]["default_mode"]),
            detour_factor={k: float(v) for k, v in raw["travel"]["detour_factor"].items()},
            speed_kmh={
                z: {m: float(s) for m, s in modes.items()}
                for z, modes in raw["travel"]["speed_kmh"].items()
            },
            max_plausible_kmh=float(raw["travel"]["max_plausible_kmh"]),
        ),
        evv=Evv(**raw["evv"]),
        compliance=Compliance(**raw["compliance"]),
        horizon_days=int(raw["plans"]["horizon_days"]),
        assignment=Assignment(
            shift_start=_clock(a["shift"]["start"]),
            shift_end=_clock(a["shift"]["end"]),
            break_earliest=_clock(a["break"]["earliest"]),
            break_latest=_clock(a["break"]["latest"]),
            break_minutes=int(a["break"]["minutes"]),
            max_visits=int(a["max_visits"]),
            window_slack_minutes=int(a["window_slack_minutes"]),
            continuity_tolerance_minutes=int(a["continuity_tolerance_minutes"]),
            solver_timeout_s=int(a["solver_timeout_s"]),
        ),
        kpis={k: Kpi(int(v["seconds"]), float(v["target"])) for k, v in raw["kpis"].items()},
        responder_roles=frozenset(raw["emergency"]["responder_roles"]),
        max_candidates=int(raw["emergency"]["max_candidates"]),
        arrival_timeout_s=int(raw["emergency"]["arrival_timeout_s"]),
        default_chain=raw["emergency"]["default_chain"],
        notify_max_attempts=int(raw["notifications"]["max_attempts"]),
        notify_max_backoff_s=float(raw["notifications"]["max_backoff_s"]),
    )


@cache
def load(path: str | None = None) -> DispatchPolicy:
    source = Path(path or os.environ.get("ELDERCARE_DISPATCH_POLICY") or POLICY_FILE)
    return parse(yaml.safe_load(source.read_text(encoding="utf-8")))


@cache
def catalogue() -> dict[str, Any]:
    return yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
