"""Every bundled policy's case table against a real PostgreSQL through the API: the facts
are written where the registry (and subsidy) keep them, POST /v1/evaluations answers."""

from __future__ import annotations

import copy

import pytest

from services.subsidy.policies.cases import Orgs, documents, load_tables, merge, table_documents
from shared.money import yuan_to_fen
from tests.integration.subsidy_helpers import case_facts, insert_elder_facts, month_of

TABLES = load_tables()
# Drafts completed by a table (a region, amounts) are posted as a new version for a region
# no other test uses, so they never change what other tests see in 同安区.
DRAFT_REGION = {"350212": "350205"}


async def _post_completed(subsidy, table) -> dict[str, str]:
    if not table.get("patch"):
        return {}
    for raw in table_documents(table, documents()):
        doc = copy.deepcopy(raw)
        doc["version"] = int(doc["version"]) + 100
        doc["regions"] = [DRAFT_REGION.get(r, r) for r in doc.get("regions") or []]
        doc = merge(doc, {"regions": doc["regions"]})
        r = await subsidy.post("/v1/policies", _json(doc))
        assert r.status_code == 201, r.text
    return DRAFT_REGION


def _json(doc):
    import orjson

    return orjson.loads(orjson.dumps(doc, default=str))


@pytest.mark.parametrize(("path", "table"), TABLES, ids=[p.name for p, _ in TABLES])
async def test_case_table_through_the_api(subsidy, db, path, table):
    region_map = await _post_completed(subsidy, table)
    orgs = Orgs()
    failures = []
    for case in table["cases"]:
        if case.get("barred_orgs"):
            continue  # fraud flags are set through the API in test_subsidy_fraud
        facts = case_facts(case, table["policy"], orgs, region_map=region_map)
        await insert_elder_facts(db, facts, name=case["name"])
        r = await subsidy.post(
            "/v1/evaluations",
            {
                "elder_id": str(facts.elder_id),
                "month": month_of(case),
                "policy_code": table["policy"],
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        expect = case.get("expect") or {}
        got = {line["rule"]: line["amount_fen"] for line in body["lines"]}
        want = {rule: yuan_to_fen(str(v)) for rule, v in (expect.get("lines") or {}).items()}
        refused = {x["rule"]: x["code"] for x in body["refused"]}
        problems = []
        if got != want:
            problems.append(f"lines {got} != {want}")
        if "total" in expect and body["total_fen"] != yuan_to_fen(str(expect["total"])):
            problems.append(f"total {body['total_fen']}")
        for rule, code in (expect.get("refused") or {}).items():
            if refused.get(rule) != code:
                problems.append(f"refused[{rule}] {refused.get(rule)} != {code}")
        assert all(line["explanation"] for line in body["lines"])
        assert all(x["reason"] for x in body["refused"])
        if problems:
            failures.append(f"{case['name']}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)
