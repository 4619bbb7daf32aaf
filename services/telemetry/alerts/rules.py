"""Which readings and silences raise alerts — pure functions over plain values.

Instant rules: emergency button and fall are critical at once, always (VISIT mode never
suppresses them). Vital signs are compared with thresholds (defaults in ``thresholds.yaml``,
per-elder overrides) and raise only when ``repeat`` breaches fall within ``window_s``.
Time-based rules (inactivity, night bed exit, offline, low battery) are evaluated by the
monitor over ``device_state``; behaviour rules are suppressed during a caregiver's visit.
Clock rules count local time (Asia/Shanghai) inside the elder's schedule: "no motion for N
daytime hours" counts only the hours between ``day_start`` and ``day_end``, across days, so a
night's sleep never looks like inactivity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml

SHANGHAI = ZoneInfo("Asia/Shanghai")
VITALS = ("heart_rate", "resp_rate", "spo2", "systolic", "diastolic", "temp_c")
BEHAVIOUR_KINDS = frozenset({"inactivity", "bed_exit_night"})
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
# Every kind of alert the platform raises (the API's ``kind`` enum is built from this).
ALERT_KINDS = (
    "emergency",
    "fall",
    *(f"{metric}_{side}" for metric in VITALS for side in ("low", "high")),
    "inactivity",
    "bed_exit_night",
    "gateway_offline",
    "device_offline",
    "low_battery",
    "unprocessed_emergency",
    "unknown_device_emergency",
)
# Whom an escalation step re-notifies: the duty desk (SSE console), the bed's organisation,
# the family caregiver, the community officer. Delivery is the notifier's job; the step and
# its targets travel in the alert log entry (and so on the SSE feed).
NOTIFY_TARGETS = ("duty_desk", "org", "family", "community")
NotifyTarget = Literal["duty_desk", "org", "family", "community"]
MAX_ESCALATION_STEPS = 10


@dataclass(frozen=True)
class Threshold:
    warn_low: float
    warn_high: float
    crit_low: float
    crit_high: float
    repeat: int
    window_s: int


@dataclass(frozen=True)
class Config:
    thresholds: dict[str, Threshold]
    dedup_window_s: int
    heartbeat_interval_s: int
    offline_after_missed: int
    low_battery_percent: int
    clock_skew_s: int
    inactivity_hours: float
    day_start: time
    day_end: time
    night_start: time
    night_end: time
    bed_exit_minutes: int
    escalation: Mapping[str, tuple[EscalationStep, ...]] = field(default_factory=dict)
    # A resolved offline alert is raised again for the same silence only after this long.
    offline_realert_after_s: int = 24 * 3600


@dataclass(frozen=True)
class EscalationStep:
    """Due ``after_s`` seconds after the alert was raised, unless acknowledged by then."""

    after_s: int
    notify: tuple[str, ...]


def parse_escalation(raw: Mapping[str, Any]) -> dict[str, tuple[EscalationStep, ...]]:
    """Chains per severity: at most ``MAX_ESCALATION_STEPS`` steps, strictly later each,
    each naming known targets. Refused loudly: a chain is a promise about who hears."""
    chains: dict[str, tuple[EscalationStep, ...]] = {}
    for severity, steps in raw.items():
        if severity not in SEVERITY_RANK:
            raise ValueError(f"escalation: unknown severity {severity!r}")
        parsed = tuple(
            EscalationStep(int(step["after_s"]), tuple(step.get("notify") or ()))
            for step in steps or ()
        )
        if len(parsed) > MAX_ESCALATION_STEPS:
            raise ValueError(f"escalation.{severity}: more than {MAX_ESCALATION_STEPS} steps")
        delays = [step.after_s for step in parsed]
        if any(d <= 0 for d in delays) or delays != sorted(set(delays)):
            raise ValueError(f"escalation.{severity}: delays must be positive and increasing")
        for step in parsed:
            unknown = set(step.notify) - set(NOTIFY_TARGETS)
            if unknown or not step.notify:
                raise ValueError(f"escalation.{severity}: notify {sorted(unknown) or 'nobody'}")
        chains[severity] = parsed
    return chains


def parse_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def parse_config(raw: dict[str, Any]) -> Config:
    return Config(
        thresholds={
            m: Threshold(**{k: v for k, v in raw[m].items() if k != "unit"}) for m in VITALS
        },
        dedup_window_s=int(raw["dedup_window_s"]),
        heartbeat_interval_s=int(raw["heartbeat_interval_s"]),
        offline_after_missed=int(raw["offline_after_missed"]),
        low_battery_percent=int(raw["low_battery_percent"]),
        clock_skew_s=int(raw["clock_skew_s"]),
        inactivity_hours=float(raw["inactivity_hours"]),
        day_start=parse_time(raw["day_start"]),
        day_end=parse_time(raw["day_end"]),
        night_start=parse_time(raw["night_start"]),
        night_end=parse_time(raw["night_end"]),
        bed_exit_minutes=int(raw["bed_exit_minutes"]),
        escalation=parse_escalation(raw["escalation"]),
        offline_realert_after_s=int(float(raw["offline_realert_after_h"]) * 3600),
    )


@cache
def defaults() -> Config:
    return parse_config(yaml.safe_load(Path(__file__).with_name("thresholds.yaml").read_text()))


def thresholds_for(overrides: dict[str, dict[str, float]] | None) -> dict[str, Threshold]:
    """Defaults with an elder's overrides applied field by field."""
    base = defaults().thresholds
    if not overrides:
        return base
    merged = dict(base)
    for metric, fields in overrides.items():
        if metric in merged:
            merged[metric] = Threshold(**{**merged[metric].__dict__, **fields})
    return merged


@dataclass(frozen=True)
class Breach:
    metric: str
    value: float
    severity: str  # warning | critical


def breaches(reading: dict[str, float], thresholds: dict[str, Threshold]) -> list[Breach]:
    """Each vital in ``reading`` outside its thresholds, with the worse severity that applies."""
    out = []
    for metric in VITALS:
        value = reading.get(metric)
        if value is None:
            continue
        t = thresholds[metric]
        if value < t.crit_low or value > t.crit_high:
            out.append(Breach(metric, float(value), "critical"))
        elif value < t.warn_low or value > t.warn_high:
            out.append(Breach(metric, float(value), "warning"))
    return out


def sustained(count_in_window: int, threshold: Threshold) -> bool:
    """Whether ``count_in_window`` breaches (this one included) meet the repeat condition."""
    return count_in_window >= threshold.repeat


def vital_kind(breach: Breach, thresholds: dict[str, Threshold]) -> str:
    t = thresholds[breach.metric]
    return f"{breach.metric}_{'low' if breach.value < t.warn_low else 'high'}"


def dedup_key(elder_or_device: str, kind: str) -> str:
    return f"{elder_or_device}:{kind}"


def absorbs(last_event_at: datetime, now: datetime, window_s: int) -> bool:
    """An active alert absorbs a new occurrence of its kind while within the dedup window."""
    return now - last_event_at <= timedelta(seconds=window_s)


def _local(at: datetime) -> time:
    return at.astimezone(SHANGHAI).time()


def _between(t: time, start: time, end: time) -> bool:
    return start <= t < end if start <= end else (t >= start or t < end)


def is_daytime(at: datetime, cfg: Config) -> bool:
    return _between(_local(at), cfg.day_start, cfg.day_end)


def is_night(at: datetime, cfg: Config) -> bool:
    return _between(_local(at), cfg.night_start, cfg.night_end)


def _window_of(day: date, start: time, end: time) -> tuple[datetime, datetime]:
    """The local window that opens on ``day`` (closing the next day when it wraps), in UTC."""
    opens = datetime.combine(day, start, SHANGHAI)
    closes = datetime.combine(day if end > start else day + timedelta(days=1), end, SHANGHAI)
    return opens.astimezone(UTC), closes.astimezone(UTC)


def window_seconds(begin: datetime, end: datetime, start: time, end_of_window: time) -> float:
    """Seconds of [begin, end) inside the daily local window [start, end_of_window) in
    Asia/Shanghai, across any number of days. A window whose end is before its start wraps
    midnight (22:00–06:00); a window that starts where it ends is empty."""
    if end <= begin or start == end_of_window:
        return 0.0
    first = begin.astimezone(SHANGHAI).date() - timedelta(days=1)  # a wrapped window from
    last = end.astimezone(SHANGHAI).date()  # the day before may still be open at ``begin``
    days = (last - first).days + 1

    def overlap(day: date) -> float:
        opens, closes = _window_of(day, start, end_of_window)
        return max(0.0, (min(closes, end) - max(opens, begin)).total_seconds())

    if days <= 6:
        return sum(overlap(first + timedelta(days=i)) for i in range(days))
    # Days strictly inside lie wholly within [begin, end): count them without a loop, so
    # a sensor silent for a year costs the same as one silent for a night.
    edges = [first + timedelta(days=i) for i in (0, 1, 2)]
    edges += [last - timedelta(days=i) for i in (2, 1, 0)]
    opens, closes = _window_of(first + timedelta(days=3), start, end_of_window)
    return sum(map(overlap, edges)) + (days - 6) * (closes - opens).total_seconds()


def daytime_hours(begin: datetime, end: datetime, cfg: Config) -> float:
    """Hours of [begin, end) between ``day_start`` and ``day_end``, local time."""
    return window_seconds(begin, end, cfg.day_start, cfg.day_end) / 3600


def night_minutes(begin: datetime, end: datetime, cfg: Config) -> float:
    """Minutes of [begin, end) between ``night_start`` and ``night_end``, local time."""
    return window_seconds(begin, end, cfg.night_start, cfg.night_end) / 60


def inactive(last_motion_at: datetime | None, now: datetime, cfg: Config) -> bool:
    """No motion for ``inactivity_hours`` of daytime (the night between does not count). A
    home that never reported motion is not judged: its sensors may not be installed yet."""
    if last_motion_at is None:
        return False
    return daytime_hours(last_motion_at, now, cfg) >= cfg.inactivity_hours


def bed_exit_unreturned(
    bed_state: str | None, bed_state_at: datetime | None, now: datetime, cfg: Config
) -> bool:
    """Out of bed for ``bed_exit_minutes`` of the night without returning: getting up at
    21:50 counts from 22:00, getting up for the day at 05:55 never reaches the limit."""
    if bed_state != "out" or bed_state_at is None:
        return False
    return night_minutes(bed_state_at, now, cfg) >= cfg.bed_exit_minutes


def offline(last_seen_at: datetime | None, now: datetime, cfg: Config) -> bool:
    if last_seen_at is None:
        return False
    silence = timedelta(seconds=cfg.heartbeat_interval_s * cfg.offline_after_missed)
    return now - last_seen_at > silence


def low_battery(battery: int | None, cfg: Config) -> bool:
    return battery is not None and battery < cfg.low_battery_percent


STALE_AFTER = timedelta(days=7)


def clock_skewed(device_ts: datetime, received_at: datetime, cfg: Config) -> bool:
    """A device clock ahead of ours, or one so far behind that no gateway buffers that long.
    (Late-but-plausible timestamps are normal: gateways buffer and resend after outages.)"""
    ahead = (device_ts - received_at).total_seconds() > cfg.clock_skew_s
    return ahead or received_at - device_ts > STALE_AFTER


def suppressed(kind: str, visit_in_progress: bool) -> bool:
    """VISIT mode: a caregiver in the home silences behaviour alerts, never emergencies."""
    return visit_in_progress and kind in BEHAVIOUR_KINDS


def next_escalation(
    severity: str, raised_at: datetime, level: int, now: datetime, cfg: Config
) -> EscalationStep | None:
    """The step an unacknowledged alert at ``level`` (steps taken so far) is due for now;
    None when it is not due yet or the chain is exhausted (a finite chain: at most
    ``len(chain)`` re-notifications, then the alert waits, open, for a person)."""
    chain = cfg.escalation.get(severity, ())
    if level >= len(chain):
        return None
    step = chain[level]
    return step if now - raised_at >= timedelta(seconds=step.after_s) else None


def escalation_due(
    severity: str, raised_at: datetime, level: int, now: datetime, cfg: Config
) -> bool:
    return next_escalation(severity, raised_at, level, now, cfg) is not None


def escalation_final(severity: str, level: int, cfg: Config) -> bool:
    """Whether ``level`` (steps taken) is the end of the severity's chain."""
    return level >= len(cfg.escalation.get(severity, ()))
