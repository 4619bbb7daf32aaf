"""Policy documents: validation refuses what must not be used, naming the rule and field."""

from __future__ import annotations

import copy
from datetime import date

import pytest
import yaml

from services.subsidy.policies.document import parse_document
from services.subsidy.policies.predicates import PolicyInvalid
from shared.policy import POLICY_DIR


def raw(name: str) -> dict:
    return yaml.safe_load((POLICY_DIR / name).read_text(encoding="utf-8"))


def errors(doc: dict) -> dict[str, str]:
    with pytest.raises(PolicyInvalid) as exc:
        parse_document(doc)
    return {field: message.en for field, message in exc.value.errors}


def test_every_shipped_document_parses():
    for path in sorted(POLICY_DIR.glob("*.yaml")):
        if not path.name.endswith(".cases.yaml"):
            doc = parse_document(yaml.safe_load(path.read_text(encoding="utf-8")))
            assert doc.status in ("active", "draft")
            assert len(doc.hash) == 64


def test_drafts_keep_their_blanks_and_cannot_be_activated():
    doc = parse_document(raw("sz-songgang-home-care.yaml"))
    assert doc.status == "draft"
    assert {f for f, _ in doc.blanks} == {
        f"rules[{r}].amount.monthly"
        for r in ("dibao_dependent", "dependent", "special_groups", "age80")
    }
    active = dict(raw("sz-songgang-home-care.yaml"), status="active")
    found = errors(active)
    assert "rules[age80].amount.monthly" in found
    assert "blank" in found["rules[age80].amount.monthly"]


def test_region_less_draft_cannot_be_activated():
    found = errors(dict(raw("visit-circle.yaml"), status="active"))
    assert "regions" in found


def test_two_rules_for_one_need_without_a_combination_are_refused():
    doc = raw("sz-home-care-voucher-v2.yaml")
    doc["combinations"] = []
    with pytest.raises(PolicyInvalid) as exc:
        parse_document(doc)
    found = [(f, m.en) for f, m in exc.value.errors]
    assert any(
        f == "rules[special_groups].need" and "dibao_dependent and special_groups" in m
        for f, m in found
    )
    assert any(f == "rules[age80].need" for f, _ in found)


def test_disjoint_rules_for_one_need_need_no_combination():
    # nursing_total (level 4) and nursing_semi (1–3) can never grant on the same day
    doc = parse_document(raw("xm-tongan-family-bed.yaml"))
    assert {r.need for r in doc.rules if r.id.startswith("nursing")} == {"nursing"}
    assert not [c for c in doc.combinations if "nursing_total" in c.rules and c.kind == "highest"]


def test_overlapping_nursing_levels_are_a_conflict():
    doc = raw("xm-tongan-family-bed.yaml")
    doc["rules"][4]["eligible"] = {"all": ["safety_net", "has_bed", {"level_in": [1, 2, 3, 4]}]}
    assert "rules[nursing_semi].need" in errors(doc)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda d: d["rules"][2].update(eligible={"age_over": 60}),
            "rules[operating].eligible.age_over",
        ),
        (
            lambda d: d["rules"][2].update(eligible={"category": "rich"}),
            "rules[operating].eligible.category",
        ),
        (
            lambda d: d["rules"][2].update(eligible="no_such_definition"),
            "rules[operating].eligible",
        ),
        (
            lambda d: d["rules"][2].update(amount={"monthly": 250.5}),
            "rules[operating].amount.monthly",
        ),
        (
            lambda d: d["rules"][2].update(amount={"monthly": "-1"}),
            "rules[operating].amount.monthly",
        ),
        (lambda d: d["rules"][2].update(fund="lottery"), "rules[operating].fund"),
        (lambda d: d["rules"][2].pop("reference"), "rules[operating].reference"),
        (lambda d: d["rules"][2].update(kind="weekly"), "rules[operating].kind"),
        (lambda d: d["combinations"][0].update(cap=["operating"]), "combinations[0].cap"),
        (
            lambda d: d["rules"][2].update(eligible={"__import__": "os"}),
            "rules[operating].eligible.__import__",
        ),
    ],
)
def test_invalid_documents_name_the_rule_and_field(mutate, field):
    doc = copy.deepcopy(raw("xm-tongan-family-bed.yaml"))
    mutate(doc)
    assert field in errors(doc)


def test_definitions_may_not_loop():
    doc = raw("xm-tongan-family-bed.yaml")
    doc["definitions"]["local_hukou"] = "safety_net"
    assert any("refers to itself" in m for m in errors(doc).values())


def test_versions_and_dated_amounts():
    v1 = parse_document(raw("sz-home-care-voucher-v1.yaml"))
    v2 = parse_document(raw("sz-home-care-voucher-v2.yaml"))
    assert (v1.code, v1.version, v2.version) == ("sz-home-care-voucher", 1, 2)
    assert v1.valid_to is not None and v1.valid_to < v2.valid_from
    assert v2.rule("age80").valid_to == date(2025, 3, 31)  # the three-month transition
    assert v1.hash != v2.hash
