from datetime import UTC, datetime, timedelta

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


@given(level=st.integers(0, 5), extra=st.integers(0, 600))
def test_escalation_steps_by_level(level, extra):
    raised = datetime(2026, 1, 1, tzinfo=UTC)
    delay = CFG.escalate_after_s["critical"]
    due_at = raised + timedelta(seconds=delay * (level + 1))
    assert rules.escalation_due("critical", raised, level, due_at + timedelta(seconds=extra), CFG)
    assert not rules.escalation_due("critical", raised, level, due_at - timedelta(seconds=1), CFG)


@given(values=st.lists(st.floats(20, 250), min_size=1, max_size=5))
def test_breach_severity_is_monotone(values):
    """A reading further from normal is never graded less severe."""
    rank = {"warning": 1, "critical": 2}
    for v in values:
        b = rules.breaches({"heart_rate": v}, T)
        worse = rules.breaches({"heart_rate": v + 10 if v > 80 else v - 10}, T)
        if b:
            assert worse and rank[worse[0].severity] >= rank[b[0].severity]
