"""shared.policy: shipped YAML policies and selection by region and date."""

from __future__ import annotations

from datetime import date

import pytest

from shared.policy import (
    BedRules,
    NoPolicy,
    bed_policy_for,
    case_files,
    load_policies,
    parse_policy,
    policy_by_code,
    policy_files,
)


def test_shipped_policies_parse():
    policies = {p.code: p for p in load_policies()}
    assert {"xm-tongan-family-bed", "sz-home-care-voucher", "visit-circle"} <= set(policies)

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

    # Only policies from the seeds ship: no catch-all that covers every region.
    assert "national-family-bed" not in policies
    assert all(p.regions != ("",) for p in policies.values())


def test_bed_policy_prefers_more_specific_region():
    assert bed_policy_for("350212001", date(2025, 6, 1)).code == "xm-tongan-family-bed"
    assert bed_policy_for("350212", date(2025, 6, 1)).code == "xm-tongan-family-bed"


def test_regions_without_a_local_bed_policy_have_none():
    for region in ("110101", "350211", "440304"):  # 440304: Shenzhen pays vouchers, not beds
        with pytest.raises(NoPolicy):
            bed_policy_for(region, date(2025, 6, 1))


def test_bed_policy_respects_valid_from():
    with pytest.raises(LookupError):
        bed_policy_for("350212", date(2022, 12, 31))
    assert bed_policy_for("350212", date(2023, 1, 1)).code == "xm-tongan-family-bed"


def test_drafts_are_never_selected():
    drafts = [p for p in load_policies() if p.status == "draft"]
    assert {p.code for p in drafts} >= {"visit-circle", "sz-songgang-home-care"}
    assert all(not p.active for p in drafts)


def test_case_tables_are_not_policies():
    assert all(not p.name.endswith(".cases.yaml") for p in policy_files())
    assert case_files() and all(p.name.endswith(".cases.yaml") for p in case_files())


def test_no_policy_before_any_valid_from():
    with pytest.raises(LookupError):
        bed_policy_for("350212", date(2019, 12, 31))


def test_policy_by_code():
    assert policy_by_code("xm-tongan-family-bed").regions == ("350212",)
    assert policy_by_code("sz-home-care-voucher").version == 2  # the latest version
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
