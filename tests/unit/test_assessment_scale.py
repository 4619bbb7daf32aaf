"""services.registry.assessments.scale: GB/T 42195-2022 scores → level."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.registry.assessments.scale import (
    assess,
    level_for_total,
    scale,
    valid_until,
    validate_scores,
)

ITEMS = scale().items


def english(errors):
    """Field errors with their English text (each message holds zh-CN and English)."""
    assert all(m.zh and m.en for _, m in errors)
    return [(field, m.en) for field, m in errors]


def full_marks() -> dict[str, int]:
    return dict(ITEMS)


def sheet_with_total(total: int) -> dict[str, int]:
    """A valid score sheet adding up to ``total`` (fills items in order)."""
    scores, left = {}, total
    for item, max_score in ITEMS.items():
        scores[item] = min(max_score, left)
        left -= scores[item]
    assert left == 0
    return scores


def test_scale_table():
    s = scale()
    assert s.max_total == 90
    assert sum(s.items.values()) == 90
    assert len(s.items) == 26
    assert s.items["eating"] == 4
    assert s.items["consciousness"] == 1
    assert s.domain_of["vision"] == "perception_social"
    assert s.thresholds == [(0, 90), (1, 66), (2, 46), (3, 30), (4, 0)]
    assert s.validity_months == 12


def test_valid_sheet_has_no_errors():
    assert english(validate_scores(full_marks())) == []
    assert english(validate_scores({k: 0 for k in ITEMS})) == []


def test_missing_item():
    scores = full_marks()
    del scores["eating"]
    assert english(validate_scores(scores)) == [("scores.eating", "missing")]


def test_none_counts_as_missing():
    scores = full_marks()
    scores["walking"] = None
    assert english(validate_scores(scores)) == [("scores.walking", "missing")]


def test_extra_item():
    scores = full_marks() | {"juggling": 1}
    assert english(validate_scores(scores)) == [
        ("scores.juggling", "not an item of GB/T 42195-2022")
    ]


@pytest.mark.parametrize(
    ("item", "value", "message"),
    [
        ("eating", 5, "must be between 0 and 4"),
        ("eating", -1, "must be between 0 and 4"),
        ("consciousness", 2, "must be between 0 and 1"),
        ("vision", 4, "must be between 0 and 3"),
        ("eating", True, "must be an integer"),
        ("consciousness", False, "must be an integer"),
        ("eating", 2.0, "must be an integer"),
        ("eating", "2", "must be an integer"),
    ],
)
def test_bad_values(item, value, message):
    scores = full_marks()
    scores[item] = value
    assert english(validate_scores(scores)) == [(f"scores.{item}", message)]


def test_all_errors_reported():
    scores = full_marks()
    del scores["eating"]
    scores["vision"] = 9
    scores["extra"] = 0
    assert sorted(english(validate_scores(scores))) == [
        ("scores.eating", "missing"),
        ("scores.extra", "not an item of GB/T 42195-2022"),
        ("scores.vision", "must be between 0 and 3"),
    ]


@pytest.mark.parametrize(
    ("total", "level"),
    [(90, 0), (89, 1), (66, 1), (65, 2), (46, 2), (45, 3), (30, 3), (29, 4), (0, 4)],
)
def test_level_for_total_boundaries(total, level):
    assert level_for_total(total) == level


@pytest.mark.parametrize("total", [91, -1, 1000])
def test_level_for_total_out_of_range(total):
    with pytest.raises(ValueError):
        level_for_total(total)


def test_assess_plain():
    out = assess(scores=sheet_with_total(70))
    assert (out.total, out.base_level, out.level, out.adjustments) == (70, 1, 1, [])


def test_assess_coma_forces_total():
    out = assess(scores=full_marks(), coma=True)
    assert (out.total, out.base_level, out.level, out.adjustments) == (90, 0, 4, ["coma"])
    out = assess(scores=full_marks(), coma=True, dementia=True, care_risk_events_30d=5)
    assert (out.level, out.adjustments) == (4, ["coma"])


@pytest.mark.parametrize(("total", "base", "bumped"), [(90, 0, 1), (70, 1, 2), (50, 2, 3)])
def test_dementia_bumps_one_level(total, base, bumped):
    out = assess(scores=sheet_with_total(total), dementia=True)
    assert (out.base_level, out.level, out.adjustments) == (base, bumped, ["dementia"])


def test_dementia_capped_at_total_loss():
    out = assess(scores=sheet_with_total(10), dementia=True)
    assert (out.base_level, out.level) == (4, 4)
    out = assess(scores=sheet_with_total(35), dementia=True)
    assert (out.base_level, out.level) == (3, 4)


@pytest.mark.parametrize(("events", "level"), [(0, 1), (1, 1), (2, 2), (7, 2)])
def test_care_risk_events(events, level):
    out = assess(scores=sheet_with_total(70), care_risk_events_30d=events)
    assert out.level == level
    assert out.adjustments == (["care_risk_events"] if events >= 2 else [])


def test_dementia_and_events_bump_only_once():
    out = assess(scores=sheet_with_total(70), dementia=True, care_risk_events_30d=3)
    assert (out.base_level, out.level) == (1, 2)
    assert out.adjustments == ["dementia", "care_risk_events"]


def test_third_party_level_passes_through():
    for lv in range(5):
        out = assess(level=lv)
        assert (out.total, out.base_level, out.level, out.adjustments) == (None, lv, lv, [])
    out = assess(level=1, dementia=True, care_risk_events_30d=3)
    assert out.level == 1  # already adjusted by the report's assessor


def test_third_party_level_with_coma():
    out = assess(level=2, coma=True)
    assert (out.total, out.base_level, out.level, out.adjustments) == (None, 2, 4, ["coma"])
    out = assess(level=4, coma=True)
    assert out.level == 4


@pytest.mark.parametrize("lv", [-1, 5])
def test_third_party_level_out_of_range(lv):
    with pytest.raises(ValueError):
        assess(level=lv)


def test_scores_xor_level():
    with pytest.raises(ValueError):
        assess()
    with pytest.raises(ValueError):
        assess(scores=full_marks(), level=0)


@st.composite
def score_sheets(draw) -> dict[str, int]:
    return {item: draw(st.integers(0, max_score)) for item, max_score in ITEMS.items()}


@given(score_sheets(), st.data())
def test_level_monotone_in_total(sheet, data):
    assert english(validate_scores(sheet)) == []
    out = assess(scores=sheet)
    assert out.total == sum(sheet.values())
    assert 0 <= out.level <= 4
    # Raise one item by any amount: the level can only stay or improve (lower number).
    item = data.draw(st.sampled_from(sorted(ITEMS)))
    better = dict(sheet)
    better[item] = data.draw(st.integers(sheet[item], ITEMS[item]))
    assert assess(scores=better).level <= out.level


@given(st.integers(0, 90), st.integers(0, 90))
def test_level_for_total_monotone(a, b):
    lo, hi = sorted((a, b))
    assert 0 <= level_for_total(hi) <= level_for_total(lo) <= 4


@given(score_sheets(), st.booleans(), st.integers(0, 5))
def test_adjusted_level_within_bounds(sheet, dementia, events):
    out = assess(scores=sheet, dementia=dementia, care_risk_events_30d=events)
    assert out.base_level <= out.level <= min(4, out.base_level + 1)
    assert 0 <= out.level <= 4


@pytest.mark.parametrize(
    ("assessed", "until"),
    [
        (date(2025, 6, 15), date(2026, 6, 15)),
        (date(2024, 2, 29), date(2025, 2, 28)),
        (date(2024, 12, 31), date(2025, 12, 31)),
        (date(2023, 2, 28), date(2024, 2, 28)),
    ],
)
def test_valid_until(assessed, until):
    assert valid_until(assessed) == until
