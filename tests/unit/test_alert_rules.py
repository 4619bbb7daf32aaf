from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.telemetry.alerts import rules

CFG = rules.defaults()
T = CFG.thresholds


def at_shanghai(hour: int, minute: int = 0) -> datetime:
    # Shanghai is UTC+8 all year
    return datetime(2026, 11, 26, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_breaches_grade_severity():
    found = {
        b.metric: b.severity
        for b in rules.breaches({"heart_rate": 135, "spo2": 92, "temp_c": 36.6, "systolic": 185}, T)
    }
    assert found == {"heart_rate": "critical", "spo2": "warning", "systolic": "critical"}
    assert rules.breaches({"heart_rate": 72}, T) == []


def test_overrides_merge_field_by_field():
    merged = rules.thresholds_for({"spo2": {"warn_low": 88}})
    assert merged["spo2"].warn_low == 88 and merged["spo2"].crit_low == T["spo2"].crit_low
    assert merged["heart_rate"] == T["heart_rate"]


def test_vital_kind_direction():
    high = rules.Breach("heart_rate", 140, "critical")
    low = rules.Breach("heart_rate", 35, "critical")
    assert rules.vital_kind(high, T) == "heart_rate_high"
    assert rules.vital_kind(low, T) == "heart_rate_low"


def test_day_and_night_in_shanghai_time():
    assert rules.is_daytime(at_shanghai(10), CFG)
    assert not rules.is_daytime(at_shanghai(23), CFG)
    assert rules.is_night(at_shanghai(2), CFG) and rules.is_night(at_shanghai(22, 30), CFG)
    assert not rules.is_night(at_shanghai(12), CFG)


def test_inactivity_only_by_day():
    noon = at_shanghai(12)
    assert rules.inactive(noon - timedelta(hours=4), noon, CFG)
    assert not rules.inactive(noon - timedelta(hours=3, minutes=59), noon, CFG)
    assert not rules.inactive(at_shanghai(2) - timedelta(hours=8), at_shanghai(2), CFG)
    assert not rules.inactive(None, noon, CFG)


def test_bed_exit_only_at_night_and_after_the_delay():
    out = at_shanghai(2)
    assert rules.bed_exit_unreturned("out", out, out + timedelta(minutes=20), CFG)
    assert not rules.bed_exit_unreturned("out", out, out + timedelta(minutes=19), CFG)
    assert not rules.bed_exit_unreturned("in", out, out + timedelta(hours=1), CFG)
    day = at_shanghai(14)
    assert not rules.bed_exit_unreturned("out", day, day + timedelta(hours=1), CFG)


def test_offline_after_three_missed_heartbeats():
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    assert not rules.offline(seen, seen + timedelta(seconds=180), CFG)
    assert rules.offline(seen, seen + timedelta(seconds=181), CFG)


def test_visit_mode_never_silences_emergencies():
    assert rules.suppressed("inactivity", visit_in_progress=True)
    assert rules.suppressed("bed_exit_night", visit_in_progress=True)
    for kind in ("emergency", "fall", "heart_rate_high", "device_offline"):
        assert not rules.suppressed(kind, visit_in_progress=True)
    assert not rules.suppressed("inactivity", visit_in_progress=False)


def test_clock_skew():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert rules.clock_skewed(now + timedelta(minutes=6), now, CFG)
    assert not rules.clock_skewed(now - timedelta(hours=6), now, CFG)  # buffered, not skewed
    assert rules.clock_skewed(now - timedelta(days=8), now, CFG)


@given(level=st.integers(0, 2), extra=st.integers(0, 600))
def test_escalation_steps_follow_the_chain(level, extra):
    raised = datetime(2026, 1, 1, tzinfo=UTC)
    chain = CFG.escalation["critical"]
    due_at = raised + timedelta(seconds=chain[level].after_s)
    now = due_at + timedelta(seconds=extra)
    assert rules.next_escalation("critical", raised, level, now, CFG) == chain[level]
    assert not rules.escalation_due("critical", raised, level, due_at - timedelta(seconds=1), CFG)


@given(
    severity=st.sampled_from(["critical", "warning", "info"]),
    waited_s=st.integers(0, 10 * 365 * 24 * 3600),
)
def test_escalation_is_finite(severity, waited_s):
    """However long nobody answers, an alert is escalated at most len(chain) times, and the
    last step is marked final: then nothing more happens."""
    raised = datetime(2026, 1, 1, tzinfo=UTC)
    now = raised + timedelta(seconds=waited_s)
    chain = CFG.escalation[severity]
    level = 0
    while (step := rules.next_escalation(severity, raised, level, now, CFG)) is not None:
        assert step.notify
        level += 1
        assert level <= len(chain) <= rules.MAX_ESCALATION_STEPS
    assert rules.next_escalation(severity, raised, len(chain), now, CFG) is None
    assert rules.escalation_final(severity, len(chain), CFG)
    assert CFG.escalation["info"] == ()


def test_escalation_chains_are_validated():
    good = {"critical": [{"after_s": 60, "notify": ["duty_desk"]}]}
    assert rules.parse_escalation(good)["critical"][0].after_s == 60
    for bad in (
        {"critical": [{"after_s": 60, "notify": ["duty_desk"]}] * 2},  # not increasing
        {"critical": [{"after_s": 0, "notify": ["duty_desk"]}]},
        {"critical": [{"after_s": 60, "notify": ["the_mayor"]}]},
        {"critical": [{"after_s": 60, "notify": []}]},
        {"urgent": [{"after_s": 60, "notify": ["duty_desk"]}]},
        {"critical": [{"after_s": 60 * (i + 1), "notify": ["org"]} for i in range(11)]},
    ):
        with pytest.raises(ValueError, match="escalation"):
            rules.parse_escalation(bad)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A Shanghai wall-clock time in November 2026, as a UTC instant."""
    return datetime(2026, 11, day, hour, minute, tzinfo=rules.SHANGHAI).astimezone(UTC)


def test_daytime_hours_skip_the_night():
    assert rules.daytime_hours(local(25, 21, 30), local(26, 7), CFG) == 0
    assert rules.daytime_hours(local(25, 20), local(26, 8), CFG) == 2  # 20–21, 07–08
    assert rules.daytime_hours(local(26, 5), local(26, 10), CFG) == 3
    assert rules.daytime_hours(local(20, 12), local(26, 12), CFG) == 6 * 14
    assert not rules.inactive(local(25, 21, 30), local(26, 7), CFG)
    assert not rules.inactive(local(25, 21, 30), local(26, 10, 59), CFG)
    assert rules.inactive(local(25, 21, 30), local(26, 11), CFG)
    assert rules.inactive(local(25, 18), local(26, 8), CFG)  # 18–21 and 07–08


def test_a_schedule_that_wraps_midnight():
    """An elder who lives by night: day 20:00–04:00."""
    night_owl = rules.Config(**{**CFG.__dict__, "day_start": time(20), "day_end": time(4)})
    assert rules.daytime_hours(local(26, 12), local(27, 12), night_owl) == 8
    assert rules.daytime_hours(local(26, 2), local(26, 3), night_owl) == 1


def test_night_bed_exit_counts_night_minutes():
    assert rules.night_minutes(local(26, 21, 50), local(26, 22, 20), CFG) == 20
    assert rules.bed_exit_unreturned("out", local(26, 21, 50), local(26, 22, 20), CFG)
    assert not rules.bed_exit_unreturned("out", local(26, 21, 50), local(26, 22, 19), CFG)
    # up for the day just before the night ends: never a bed exit
    assert not rules.bed_exit_unreturned("out", local(26, 5, 55), local(26, 9), CFG)


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
clock = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@given(a=instants, b=instants, start=clock, end=clock)
def test_window_time_never_exceeds_wall_clock_time(a, b, start, end):
    a, b = min(a, b), max(a, b)
    assert 0 <= rules.window_seconds(a, b, start, end) <= (b - a).total_seconds() + 1e-6


@given(a=instants, b=instants, c=instants, start=clock, end=clock)
def test_window_time_is_additive_and_monotone(a, b, c, start, end):
    a, b, c = sorted((a, b, c))
    ab = rules.window_seconds(a, b, start, end)
    bc = rules.window_seconds(b, c, start, end)
    ac = rules.window_seconds(a, c, start, end)
    assert abs(ab + bc - ac) < 1e-3
    assert ac >= ab  # monotone in "now"


@given(a=instants, days=st.integers(0, 400), start=clock, end=clock)
def test_whole_days_count_the_whole_window(a, days, start, end):
    length = rules.window_seconds(local(26, 0), local(27, 0), start, end)
    assert abs(rules.window_seconds(a, a + timedelta(days=days), start, end) - days * length) < 1e-3


@given(day=st.integers(1, 29), start=st.integers(0, 10 * 60), length=st.integers(0, 10 * 60))
def test_zero_daytime_across_a_night(day, start, length):
    """Between the end of one day (21:00) and the start of the next (07:00) nothing counts,
    and neither the night's nor the day's own hours are changed by where in it one starts."""
    begin = min(local(day, 21) + timedelta(minutes=start), local(day + 1, 7))
    end = min(begin + timedelta(minutes=length), local(day + 1, 7))
    assert rules.daytime_hours(begin, end, CFG) == 0
    assert rules.daytime_hours(begin, local(day + 1, 12), CFG) == 5
