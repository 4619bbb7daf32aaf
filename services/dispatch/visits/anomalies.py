"""Anomaly rules of electronic visit verification — plain functions of the facts, so tests
(hypothesis) call them directly. A rule returns a flag (a stable code and its evidence), never
a refusal: the visit is kept and counts once a supervisor clears the flag."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.geo import distance_m

TOO_FAR = "too_far"
ALTERNATE_LOCATION = "alternate_location"
IMPOSSIBLE_TRAVEL = "impossible_travel"
OVERLAP = "overlap"
OUT_BEFORE_IN = "out_before_in"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
NO_ITEMS = "no_items"

# GPS noise: below this, two fixes are "the same place" whatever the time between them.
JITTER_M = 300.0


@dataclass(frozen=True)
class Flag:
    code: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fix:
    at: datetime
    lat: float
    lon: float


def location(distance: float, tolerance_m: float, alternate_reason: str | None) -> Flag | None:
    """Checked in beyond the tolerance from the home: ``too_far``, or ``alternate_location``
    when the caregiver gave a reason (still for a supervisor to accept)."""
    if distance <= tolerance_m:
        return None
    detail = {"distance_m": round(distance, 1), "tolerance_m": tolerance_m}
    if alternate_reason:
        return Flag(ALTERNATE_LOCATION, {**detail, "reason": alternate_reason})
    return Flag(TOO_FAR, detail)


def travel(previous: Fix | None, this: Fix, max_kmh: float) -> Flag | None:
    """From the caregiver's previous fix to this one faster than anyone can travel."""
    if previous is None:
        return None
    metres = distance_m(previous.lat, previous.lon, this.lat, this.lon)
    if metres <= JITTER_M:
        return None
    seconds = (this.at - previous.at).total_seconds()
    kmh = float("inf") if seconds <= 0 else metres / 1000.0 / (seconds / 3600.0)
    if kmh <= max_kmh:
        return None
    return Flag(
        IMPOSSIBLE_TRAVEL,
        {
            "distance_m": round(metres, 1),
            "seconds": round(seconds, 1),
            "kmh": None if kmh == float("inf") else round(kmh, 1),
            "max_kmh": max_kmh,
        },
    )


def overlap_seconds(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> float:
    return max(0.0, (min(a[1], b[1]) - max(a[0], b[0])).total_seconds())


def overlaps(
    interval: tuple[datetime, datetime],
    others: Iterable[tuple[Any, datetime, datetime]],
    tolerance_s: float,
) -> Flag | None:
    """Another visit of the same caregiver overlapping this one by more than the tolerance."""
    hits = []
    for other_id, start, end in others:
        seconds = overlap_seconds(interval, (start, end))
        if seconds > tolerance_s:
            hits.append({"visit_id": str(other_id), "seconds": round(seconds)})
    return Flag(OVERLAP, {"with": hits}) if hits else None


def duration(
    check_in: datetime,
    check_out: datetime,
    planned_minutes: float,
    *,
    short_ratio: float,
    long_ratio: float,
) -> Flag | None:
    """Out before in; or far shorter or longer than planned."""
    actual = (check_out - check_in).total_seconds() / 60.0
    if actual < 0:
        return Flag(OUT_BEFORE_IN, {"minutes": round(actual, 1)})
    detail = {"minutes": round(actual, 1), "planned_minutes": round(planned_minutes, 1)}
    if actual < short_ratio * planned_minutes:
        return Flag(TOO_SHORT, detail)
    if actual > long_ratio * planned_minutes:
        return Flag(TOO_LONG, detail)
    return None


def items(done: Iterable[str]) -> Flag | None:
    return None if list(done) else Flag(NO_ITEMS)


def is_late(at: datetime, received_at: datetime, late_after_s: float) -> bool:
    """An upload this long after the handset's time is marked late (it still counts)."""
    return (received_at - at).total_seconds() > late_after_s
