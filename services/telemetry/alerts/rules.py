"""Which readings and silences raise alerts — pure functions over plain values.

Instant rules: emergency button and fall are critical at once, always (VISIT mode never
suppresses them). Vital signs are compared with thresholds (defaults in ``thresholds.yaml``,
per-elder overrides) and raise only when ``repeat`` breaches fall within ``window_s``.
Time-based rules (inactivity, night bed exit, offline, low battery) are evaluated by the
monitor over ``device_state``; behaviour rules are suppressed during a caregiver's visit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

SHANGHAI = ZoneInfo("Asia/Shanghai")
VITALS = ("heart_rate", "resp_rate", "spo2", "systolic", "diastolic", "temp_c")
BEHAVIOUR_KINDS = frozenset({"inactivity", "bed_exit_night"})
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


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
    escalate_after_s: dict[str, int] = field(default_factory=dict)


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
        escalate_after_s={k: int(v) for k, v in raw["escalate_after_s"].items()},
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


def inactive(last_motion_at: datetime | None, now: datetime, cfg: Config) -> bool:
    """No motion for ``inactivity_hours``, checked during the day (a home that never reported
    motion is not judged: its sensors may not be installed yet)."""
    if last_motion_at is None or not is_daytime(now, cfg):
        return False
    return now - last_motion_at >= timedelta(hours=cfg.inactivity_hours)


def bed_exit_unreturned(
    bed_state: str | None, bed_state_at: datetime | None, now: datetime, cfg: Config
) -> bool:
    """Out of bed at night and not back within ``bed_exit_minutes``."""
    if bed_state != "out" or bed_state_at is None or not is_night(bed_state_at, cfg):
        return False
    return now - bed_state_at >= timedelta(minutes=cfg.bed_exit_minutes)


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


def escalation_due(
    severity: str, raised_at: datetime, level: int, now: datetime, cfg: Config
) -> bool:
    """Unacknowledged for (level + 1) × the severity's delay."""
    delay = cfg.escalate_after_s.get(severity)
    return delay is not None and now - raised_at >= timedelta(seconds=delay * (level + 1))
