"""shared.policy: shipped YAML policies and selection by region and date."""

from __future__ import annotations

from datetime import date

import pytest

from shared.policy import BedRules, bed_policy_for, load_policies, parse_policy, policy_by_code


def test_shipped_policies_parse():
    policies = {p.code: p for p in load_policies()}
    assert {"national-family-bed", "xm-tongan-family-bed"} <= set(policies)

    tongan = policies["xm-tongan-family-bed"]
    assert tongan.version == 1
    assert tongan.regions == ("350212",)
    assert tongan.valid_from == date(2023, 1, 1)
    assert tongan.valid_to is None
    assert tongan.title == "同安区家庭养老床位试点工作实施方案"
    assert tongan.bed == BedRules(
        min_age=60,
        min_level=1,
        require_lives_at_home=True,
        require_coresident_caregiver=True,
        refused_living_arrangements=frozenset({"alone"}),
        modification_warranty_days=365,
    )

    national = policies["national-family-bed"]
    assert national.regions == ("",)
    assert national.valid_from == date(2020, 1, 1)
    assert national.bed is not None
    assert national.bed.min_level == 1


def test_bed_policy_prefers_more_specific_region():
    assert bed_policy_for("350212001", date(2025, 6, 1)).code == "xm-tongan-family-bed"
    assert bed_policy_for("350212", date(2025, 6, 1)).code == "xm-tongan-family-bed"


def test_bed_policy_falls_back_to_national():
    assert bed_policy_for("110101", date(2025, 6, 1)).code == "national-family-bed"
    assert bed_policy_for("350211", date(2025, 6, 1)).code == "national-family-bed"


def test_bed_policy_respects_valid_from():
    assert bed_policy_for("350212", date(2022, 12, 31)).code == "national-family-bed"
    assert bed_policy_for("350212", date(2023, 1, 1)).code == "xm-tongan-family-bed"


def test_no_policy_before_any_valid_from():
    with pytest.raises(LookupError):
        bed_policy_for("110101", date(2019, 12, 31))


def test_policy_by_code():
    assert policy_by_code("xm-tongan-family-bed").regions == ("350212",)
    with pytest.raises(LookupError, match="no-such-policy"):
        policy_by_code("no-such-policy")


def _raw(**over):
    raw = {
        "code": "t",
        "version": "2",
        "title": "T",
        "regions": [3502, "350212"],
        "valid_from": date(2024, 1, 1),
        "valid_to": date(2024, 12, 31),
    }
    raw.update(over)
    return raw


def test_parse_policy_without_bed_and_covers():
    p = parse_policy(_raw())
    assert p.bed is None
    assert p.version == 2
    assert p.regions == ("3502", "350212")
    assert p.covers("350212001", date(2024, 1, 1))
    assert p.covers("350203", date(2024, 12, 31))
    assert not p.covers("350212", date(2025, 1, 1))
    assert not p.covers("350212", date(2023, 12, 31))
    assert not p.covers("110101", date(2024, 6, 1))
    assert p.specificity("350212001") == 6
    assert p.specificity("350203") == 4
    assert p.specificity("110101") == -1


def test_parse_policy_bed_defaults():
    p = parse_policy(
        _raw(
            bed={
                "min_age": 65,
                "min_level": "2",
                "require_lives_at_home": False,
                "require_coresident_caregiver": 0,
                "modification_warranty_days": 180,
            }
        )
    )
    assert p.bed == BedRules(65, 2, False, False, frozenset(), 180)
