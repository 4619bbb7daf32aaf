"""services.registry.beds.eligibility: every failed condition, with its reason code."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.registry.beds.eligibility import ElderFacts, Reason, check
from shared.i18n import T, current_lang
from shared.policy import BedRules

TODAY = date(2025, 6, 15)

RULES = BedRules(
    min_age=60,
    min_level=1,
    require_lives_at_home=True,
    require_coresident_caregiver=True,
    refused_living_arrangements=frozenset({"alone"}),
    modification_warranty_days=365,
)

ELIGIBLE = ElderFacts(
    age=80,
    lives_at_home=True,
    living_arrangement="with_family",
    deceased_on=None,
    level=2,
    level_valid_until=TODAY + timedelta(days=100),
    has_coresident_caregiver=True,
    has_open_bed=False,
)


def codes(facts: ElderFacts, rules: BedRules = RULES) -> list[str]:
    return [r.code for r in check(facts, rules, TODAY)]


def test_eligible_elder():
    assert check(ELIGIBLE, RULES, TODAY) == []


def test_assessment_valid_through_today():
    assert codes(replace(ELIGIBLE, level_valid_until=TODAY)) == []
    assert codes(replace(ELIGIBLE, level_valid_until=None)) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"deceased_on": TODAY}, "deceased"),
        ({"deceased_on": date(2024, 1, 1)}, "deceased"),
        ({"lives_at_home": False}, "not_living_at_home"),
        ({"level": None}, "no_assessment"),
        ({"level_valid_until": TODAY - timedelta(days=1)}, "assessment_expired"),
        ({"level": 0}, "level_below_minimum"),
        ({"has_coresident_caregiver": False}, "no_coresident_caregiver"),
        ({"has_open_bed": True}, "open_bed_exists"),
    ],
)
def test_single_failure(change, code):
    assert codes(replace(ELIGIBLE, **change)) == [code]


def test_lives_alone():
    facts = replace(ELIGIBLE, living_arrangement="alone", has_coresident_caregiver=False)
    assert codes(facts) == ["lives_alone", "no_coresident_caregiver"]
    assert codes(replace(ELIGIBLE, living_arrangement="alone")) == ["lives_alone"]


def test_under_60_is_not_an_elder_under_this_policy():
    assert codes(replace(ELIGIBLE, age=59)) == ["under_age"]
    assert codes(replace(ELIGIBLE, age=60)) == []


def test_future_death_date_is_not_deceased():
    assert codes(replace(ELIGIBLE, deceased_on=TODAY + timedelta(days=1))) == []


def test_all_reasons_together():
    facts = ElderFacts(
        age=80,
        lives_at_home=False,
        living_arrangement="alone",
        deceased_on=date(2025, 1, 1),
        level=None,
        level_valid_until=None,
        has_coresident_caregiver=False,
        has_open_bed=True,
    )
    assert codes(facts) == [
        "deceased",
        "not_living_at_home",
        "no_assessment",
        "lives_alone",
        "no_coresident_caregiver",
        "open_bed_exists",
    ]


def test_rules_switch_conditions_off():
    lax = BedRules(0, 0, False, False, frozenset(), 0)
    facts = replace(
        ELIGIBLE,
        lives_at_home=False,
        living_arrangement="alone",
        level=0,
        has_coresident_caregiver=False,
    )
    assert codes(facts, lax) == []
    assert codes(facts) == [
        "not_living_at_home",
        "level_below_minimum",
        "lives_alone",
        "no_coresident_caregiver",
    ]


def test_reason_messages_in_both_languages():
    reasons = check(replace(ELIGIBLE, level=0), RULES, TODAY)
    assert reasons == [
        Reason(
            "level_below_minimum",
            T(
                "能力等级 0（能力完好）低于最低要求 1（轻度失能）",
                "capability level 0 (intact) is below the minimum 1 (mild)",
            ),
        )
    ]
    # zh-CN by default, English on Accept-Language: en; the code never changes
    assert reasons[0].as_dict() == {
        "code": "level_below_minimum",
        "message": "能力等级 0（能力完好）低于最低要求 1（轻度失能）",
    }
    token = current_lang.set("en")
    try:
        assert reasons[0].as_dict() == {
            "code": "level_below_minimum",
            "message": "capability level 0 (intact) is below the minimum 1 (mild)",
        }
    finally:
        current_lang.reset(token)
    expired = check(replace(ELIGIBLE, level_valid_until=date(2025, 6, 1)), RULES, TODAY)
    assert "2025-06-01" in expired[0].message.zh and "2025-06-01" in expired[0].message.en


def expected_codes(f: ElderFacts, r: BedRules) -> set[str]:
    """The eligibility rules restated independently of ``check``."""
    out = set()
    if f.deceased_on is not None and f.deceased_on <= TODAY:
        out.add("deceased")
    if f.age < r.min_age:
        out.add("under_age")
    if r.require_lives_at_home and not f.lives_at_home:
        out.add("not_living_at_home")
    has_level = f.level is not None
    current = has_level and (f.level_valid_until is None or f.level_valid_until >= TODAY)
    if not has_level:
        out.add("no_assessment")
    elif not current:
        out.add("assessment_expired")
    elif f.level < r.min_level:
        out.add("level_below_minimum")
    if f.living_arrangement in r.refused_living_arrangements:
        out.add("lives_alone")
    if r.require_coresident_caregiver and not f.has_coresident_caregiver:
        out.add("no_coresident_caregiver")
    if f.has_open_bed:
        out.add("open_bed_exists")
    return out


_DATES = st.one_of(st.none(), st.dates(TODAY - timedelta(days=800), TODAY + timedelta(days=800)))

facts_strategy = st.builds(
    ElderFacts,
    age=st.integers(0, 120),
    lives_at_home=st.booleans(),
    living_arrangement=st.sampled_from(["alone", "with_family", "with_spouse", "other"]),
    deceased_on=_DATES,
    level=st.one_of(st.none(), st.integers(0, 4)),
    level_valid_until=_DATES,
    has_coresident_caregiver=st.booleans(),
    has_open_bed=st.booleans(),
)

rules_strategy = st.builds(
    BedRules,
    min_age=st.sampled_from([0, 60, 65]),
    min_level=st.integers(0, 4),
    require_lives_at_home=st.booleans(),
    require_coresident_caregiver=st.booleans(),
    refused_living_arrangements=st.frozensets(st.sampled_from(["alone", "other"])),
    modification_warranty_days=st.just(365),
)


@given(facts_strategy, rules_strategy)
def test_reason_codes_match_independent_computation(facts, rules):
    reasons = check(facts, rules, TODAY)
    got = [r.code for r in reasons]
    assert len(got) == len(set(got))
    assert set(got) == expected_codes(facts, rules)
    assert all(r.message.zh and r.message.en for r in reasons)
