"""The subsidy API as clients use it: policies and drafts, evaluations in both languages and
through the registry's own API, fraud, applications, rewards, reports."""

from __future__ import annotations

import copy
from datetime import date, timedelta

import orjson
import yaml

from services.subsidy.policies.facts import Application, Assessment, Bed, Category, ElderFacts, Span
from shared import clock
from shared.db import new_id
from shared.policy import POLICY_DIR
from tests.integration.builders import make_org
from tests.integration.subsidy.test_subsidy_runs import run_month, safety_net_elder
from tests.integration.subsidy.test_subsidy_vouchers import sz_elder
from tests.integration.subsidy_helpers import add_verified_visit, ensure_org, insert_elder_facts


def doc(name: str) -> dict:
    raw = yaml.safe_load((POLICY_DIR / name).read_text(encoding="utf-8"))
    return orjson.loads(orjson.dumps(raw, default=str))


async def test_policies_list_drafts_with_their_blanks(subsidy):
    r = await subsidy.get("/v1/policies", params={"limit": 200}, role="community", region="350212")
    assert r.status_code == 200
    by_code = {(p["code"], p["version"]): p for p in r.json()["items"]}
    assert by_code[("xm-tongan-family-bed", 1)]["status"] == "active"
    songgang = by_code[("sz-songgang-home-care", 1)]
    assert songgang["status"] == "draft"
    assert "rules[age80].amount.monthly" in {b["field"] for b in songgang["blanks"]}
    assert {(c, v) for c, v in by_code if c == "sz-home-care-voucher"} == {
        ("sz-home-care-voucher", 1),
        ("sz-home-care-voucher", 2),
    }


async def test_a_blank_amount_is_refused_naming_rule_and_field(subsidy):
    d = doc("sz-songgang-home-care.yaml")
    # a code of its own: the shipped draft stays what other tests evaluate
    d.update(code="songgang-completed", version=50, status="active")
    r = await subsidy.post("/v1/policies", d)
    assert r.status_code == 422 and r.json()["type"].endswith("policy-invalid")
    assert "rules[dibao_dependent].amount.monthly" in {e["field"] for e in r.json()["errors"]}
    # posted as a draft it is kept, and refuses to activate until completed
    d.update(version=51, status="draft")
    assert (await subsidy.post("/v1/policies", d)).status_code == 201
    r = await subsidy.post("/v1/policies/songgang-completed/versions/51/activate")
    assert r.status_code == 422 and r.json()["type"].endswith("policy-incomplete")
    assert {e["field"] for e in r.json()["errors"]} >= {"rules[age80].amount.monthly"}
    done = copy.deepcopy(d)
    done["version"] = 52
    done["regions"] = ["440306999"]  # a street code no elder has: changes nothing elsewhere
    for rule, yuan in zip(done["rules"], (500, 300, 300, 200), strict=True):
        rule["amount"] = {"monthly": yuan}
    assert (await subsidy.post("/v1/policies", done)).status_code == 201
    r = await subsidy.post("/v1/policies/songgang-completed/versions/52/activate")
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert (await subsidy.post("/v1/policies", done)).status_code == 409
    assert (
        await subsidy.post("/v1/policies", done, role="community", region="440306")
    ).status_code == 403


async def test_undeclared_overlap_is_refused(subsidy):
    d = doc("sz-home-care-voucher-v2.yaml")
    d.update(version=60, combinations=[])
    r = await subsidy.post("/v1/policies", d)
    assert r.status_code == 422
    assert any(e["field"] == "rules[special_groups].need" for e in r.json()["errors"])


async def test_evaluation_explains_in_chinese_and_english(subsidy, db):
    org = new_id()
    await ensure_org(db, org)
    elder = safety_net_elder(org)
    await insert_elder_facts(db, elder)
    body = {"elder_id": str(elder.elder_id), "month": "2024-05"}
    zh = (await subsidy.post("/v1/evaluations", body)).json()
    assert zh["policy_code"] == "xm-tongan-family-bed" and zh["total_fen"] == 125_000
    nursing = next(x for x in zh["lines"] if x["rule"] == "nursing_semi")
    assert "低保" in nursing["explanation"] and "篇一（三）3" in nursing["explanation"]
    assert nursing["kind"] == "monthly" and nursing["pay_to"] == "org"
    r = await subsidy.client.post(
        "/v1/evaluations", json=body, headers={**subsidy.auth(), "Accept-Language": "en"}
    )
    en = r.json()
    nursing_en = next(x for x in en["lines"] if x["rule"] == "nursing_semi")
    assert (
        "subsistence allowance" in nursing_en["explanation"]
        and "低保（" not in nursing_en["explanation"]
    )
    refused = {x["rule"]: x["reason"] for x in en["refused"]}
    assert "not eligible" in refused["nursing_total"]


async def test_evaluation_scope_and_input(subsidy, db):
    org = new_id()
    await ensure_org(db, org)
    elder = safety_net_elder(org)
    await insert_elder_facts(db, elder)
    body = {"elder_id": str(elder.elder_id), "month": "2024-05"}
    assert (
        await subsidy.post("/v1/evaluations", body, role="community", region="350212")
    ).status_code == 200
    assert (
        await subsidy.post("/v1/evaluations", body, role="community", region="350213")
    ).status_code == 404
    assert (
        await subsidy.post("/v1/evaluations", body, role="family", elder=str(elder.elder_id))
    ).status_code == 200
    bad = await subsidy.post("/v1/evaluations", {**body, "month": "2024-5"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "month"
    nul = await subsidy.post("/v1/evaluations", {**body, "policy_code": "x\u0000"})
    assert nul.status_code == 422
    stranger = ElderFacts(new_id(), date(1950, 1, 1), "110101", "110101")
    await insert_elder_facts(db, stranger)
    r = await subsidy.post(
        "/v1/evaluations", {"elder_id": str(stranger.elder_id), "month": "2024-05"}
    )
    assert r.status_code == 422 and r.json()["type"].endswith("no-policy")


async def test_through_the_registry_api_a_bed_started_this_month(subsidy, registry):
    """The real path: elder, assessment, category and bed made through the registry's API."""
    org = await make_org(registry)
    r = await registry.post(
        "/v1/elders",
        {
            "id_number": _id_number(),
            "name": "林阿公",
            "phone": "13812345678",
            "hukou_region": "350212",
            "address": "同安区大同街道",
            "zone": "urban",
            "living_arrangement": "with_family",
        },
    )
    assert r.status_code == 201, r.text
    elder = r.json()
    today = clock.today()
    assert (
        await registry.post(
            f"/v1/elders/{elder['id']}/assessments",
            {"level": 4, "assessed_on": str(today - timedelta(days=40)), "assessor": "第三方"},
        )
    ).status_code == 201
    assert (
        await registry.post(
            f"/v1/elders/{elder['id']}/categories",
            {"code": "extreme_poverty", "valid_from": "2020-01-01"},
        )
    ).status_code == 201
    assert (
        await registry.post(
            f"/v1/elders/{elder['id']}/family-caregivers",
            {"name": "林女儿", "relation": "child", "phone": "13900000000", "lives_with": True},
        )
    ).status_code == 201
    start = today - timedelta(days=today.day - 1) if today.day > 1 else today
    r = await registry.post(
        "/v1/beds",
        {
            "elder_id": elder["id"],
            "org_id": org["id"],
            "station_id": org["station"]["id"],
            "started_on": str(start),
        },
    )
    assert r.status_code == 201, r.text
    month = f"{today.year:04d}-{today.month:02d}"
    ev = (await subsidy.post("/v1/evaluations", {"elder_id": elder["id"], "month": month})).json()
    lines = {x["rule"]: x for x in ev["lines"]}
    assert set(lines) == {"operating", "nursing_total"}
    assert (
        lines["nursing_total"]["amount_fen"] == 120_000
        and lines["operating"]["amount_fen"] == 25_000
    )
    assert lines["operating"]["parts"][0]["org_id"] == org["id"]


def _id_number() -> str:
    from tests.factories import id_number

    return id_number(born=date(1944, 4, 4))


async def test_region_without_a_bed_policy_gets_a_clear_422(registry):
    org = await make_org(registry, region="350213")
    from tests.integration.builders import make_elder

    elder = await make_elder(registry, region="350213")
    r = await registry.post(
        "/v1/beds",
        {"elder_id": elder["id"], "org_id": org["id"], "station_id": org["station"]["id"]},
    )
    assert r.status_code == 422 and r.json()["type"].endswith("no-bed-policy")
    assert r.json()["errors"][0]["field"] == "elder_id"


async def test_fraud_disqualifies_for_life_records_a_receivable_and_is_audited(subsidy, db):
    org = new_id()
    await ensure_org(db, org)
    elder = safety_net_elder(org)
    await insert_elder_facts(db, elder)
    r = await subsidy.post(
        "/v1/fraud-flags",
        {
            "subject": "elder",
            "elder_id": str(elder.elder_id),
            "reason": "虚报低保",
            "found_on": "2024-06-16",
            "repay_fen": 80_000,
            "fund": "district_finance",
        },
    )
    assert r.status_code == 201, r.text
    flag = r.json()
    ev = (
        await subsidy.post("/v1/evaluations", {"elder_id": str(elder.elder_id), "month": "2024-06"})
    ).json()
    assert ev["total_fen"] == 12_500 + 50_000  # 15 of 30 days before the flag
    later = (
        await subsidy.post("/v1/evaluations", {"elder_id": str(elder.elder_id), "month": "2031-01"})
    ).json()
    assert later["lines"] == [] and {x["code"] for x in later["refused"]} == {"disqualified"}
    owed = await db.fetchval(
        "SELECT sum(amount_fen) FROM subsidy.ledger_entries WHERE elder_id = $1 AND account = "
        "'receivable'",
        elder.elder_id,
    )
    assert owed == 80_000
    r = await subsidy.post(
        f"/v1/fraud-flags/{flag['id']}/repayments", {"amount_fen": 30_000, "paid_on": "2024-07-01"}
    )
    assert r.status_code == 200 and r.json()["repaid_fen"] == 30_000
    r = await subsidy.post(
        f"/v1/fraud-flags/{flag['id']}/repayments", {"amount_fen": 60_000, "paid_on": "2024-07-02"}
    )
    assert r.status_code == 422
    audited = await db.fetchval(
        "SELECT count(*) FROM common.audit_log WHERE resource_id = $1 AND service = 'subsidy'",
        elder.elder_id,
    )
    assert audited == 2
    assert (
        await subsidy.post(
            "/v1/fraud-flags", {"subject": "elder", "reason": "x", "found_on": "2024-01-01"}
        )
    ).status_code == 422


async def test_org_fraud_stops_its_subsidies_and_redemptions(subsidy, db):
    org = new_id()
    await ensure_org(db, org)
    elder = safety_net_elder(org)
    await insert_elder_facts(db, elder)
    r = await subsidy.post(
        "/v1/fraud-flags",
        {"subject": "org", "org_id": str(org), "reason": "虚构服务记录", "found_on": "2024-08-01"},
    )
    assert r.status_code == 201
    ev = (
        await subsidy.post("/v1/evaluations", {"elder_id": str(elder.elder_id), "month": "2024-08"})
    ).json()
    assert ev["total_fen"] == 0 and {
        x["code"] for x in ev["refused"] if x["rule"] == "operating"
    } == {"org_disqualified"}
    visit = await add_verified_visit(
        db, elder_id=elder.elder_id, org_id=org, service_day=date(2024, 8, 3)
    )
    r = await subsidy.post(
        "/v1/vouchers/redemptions",
        {"visit_id": str(visit), "price_fen": 100},
        role="org_admin",
        org=str(org),
    )
    assert r.status_code == 422 and r.json()["type"].endswith("org-disqualified")


async def test_application_three_reviews_then_vouchers(subsidy, db):
    elder = sz_elder(applications=())
    await insert_elder_facts(db, elder)
    before = (
        await subsidy.post("/v1/evaluations", {"elder_id": str(elder.elder_id), "month": "2025-06"})
    ).json()
    assert before["total_fen"] == 0
    assert "no_application" in {s for x in before["refused"] for s in x["steps"]}
    r = await subsidy.post(
        "/v1/applications",
        {
            "elder_id": str(elder.elder_id),
            "policy_code": "sz-home-care-voucher",
            "basis": "dibao_dependent",
            "documents": ["社区居家养老服务补助审批表"],
            "submitted_on": "2025-05-06",
        },
        role="community",
        region="440304",
    )
    assert r.status_code == 201, r.text
    app = r.json()
    assert (
        app["stage"] == "community" and app["due_on"] > "2025-05-16"
    )  # 10 working days, 公示 included
    assert "市、区直属医院诊断证明" in app["missing_documents"]
    path = f"/v1/applications/{app['id']}/decisions"
    assert (
        await subsidy.post(path, {"decision": "approve"}, role="street", region="440304")
    ).status_code == 403
    assert (
        await subsidy.post(path, {"decision": "approve"}, role="community", region="440304")
    ).json()["stage"] == "street"
    assert (
        await subsidy.post(path, {"decision": "approve"}, role="street", region="440304")
    ).json()["stage"] == "district"
    done = (await subsidy.post(path, {"decision": "approve"}, role="admin")).json()
    assert done["status"] == "approved" and len(done["history"]) == 4
    approved_on = done["decided_on"]
    month = approved_on[:7]
    after = (
        await subsidy.post("/v1/evaluations", {"elder_id": str(elder.elder_id), "month": month})
    ).json()
    assert after["total_fen"] > 0


async def test_a_refusal_needs_written_reasons(subsidy, db):
    elder = sz_elder(applications=())
    await insert_elder_facts(db, elder)
    app = (
        await subsidy.post(
            "/v1/applications",
            {"elder_id": str(elder.elder_id), "policy_code": "sz-home-care-voucher"},
        )
    ).json()
    path = f"/v1/applications/{app['id']}/decisions"
    assert (await subsidy.post(path, {"decision": "refuse"})).status_code == 422
    r = await subsidy.post(path, {"decision": "refuse", "reasons": ["户籍不在本市"]})
    assert r.json()["status"] == "refused" and r.json()["reasons"] == ["户籍不在本市"]


async def test_missed_entitlements_name_the_missing_step(subsidy, db):
    org = new_id()
    await ensure_org(db, org)
    no_bed = safety_net_elder(org, beds=(), residence_region="350212100201")
    expiring = safety_net_elder(
        org,
        residence_region="350212100201",
        categories=(Category("subsistence_allowance", date(2020, 1, 1), date(2024, 6, 20)),),
    )
    no_app = sz_elder(applications=(), residence_region="440304001001")
    for f in (no_bed, expiring, no_app):
        await insert_elder_facts(db, f)
    r = await subsidy.get(
        "/v1/reports/missed-entitlements",
        params={"month": "2024-05", "region": "350212100201"},
        role="community",
        region="350212",
    )
    assert r.status_code == 200, r.text
    rows = [row for c in r.json()["communities"] for row in c["elders"]]
    mine = {(row["elder_id"], row["rule"]): row["missing"] for row in rows}
    assert mine[(str(no_bed.elder_id), "nursing_semi")] == ["no_bed"]
    assert mine[(str(expiring.elder_id), "nursing_semi")] == ["category_expiring"]
    r = await subsidy.get(
        "/v1/reports/missed-entitlements",
        params={"month": "2025-06", "region": "440304001001"},
        role="admin",
    )
    rows = [row for c in r.json()["communities"] for row in c["elders"]]
    assert {
        row["rule"]: row["missing"] for row in rows if row["elder_id"] == str(no_app.elder_id)
    } == {
        "dibao_dependent": ["no_application"],
        "special_groups": ["no_application"],
    }
    assert (
        await subsidy.get(
            "/v1/reports/missed-entitlements",
            params={"month": "2024-05", "region": "4403"},
            role="community",
            region="350212",
        )
    ).status_code == 403


async def test_budget_what_if(subsidy, db):
    org = new_id()
    await ensure_org(db, org, region="350212")
    elder = safety_net_elder(org, hukou_region="350212", residence_region="350212")
    await insert_elder_facts(db, elder)
    draft = doc("xm-tongan-family-bed.yaml")
    draft.update(version=90, status="draft")
    draft["rules"][2]["amount"] = {
        "monthly": [{"from": "2023-01-01", "yuan": 250}, {"from": "2026-07-01", "yuan": 300}]
    }
    r = await subsidy.post(
        "/v1/reports/what-if", {"draft": draft, "year": 2026}, role="admin", region="350212"
    )
    assert r.status_code == 200, r.text
    body = r.json()
    jan, jul = body["months"][0], body["months"][6]
    assert jan["draft_fen"] == jan["baseline_fen"]
    assert jul["draft_fen"] > jul["baseline_fen"]
    assert jul["by_fund"]["district_finance"]["draft_fen"] == jul["draft_fen"]
    assert body["gainers"] >= 1 and body["losers"] == 0
    gain = (
        next(g for g in body["top_gainers"] if g["elder_id"] == str(elder.elder_id))
        if body["gainers"] <= 20
        else None
    )
    if gain is not None:
        assert gain["delta_fen"] == 6 * 5_000


async def test_org_reward_needs_operating_beds_and_an_amount(subsidy, db):
    org = new_id()
    await ensure_org(db, org)
    elders = [safety_net_elder(org) for _ in range(2)]
    for e in elders:
        await insert_elder_facts(db, e)
        await add_verified_visit(
            db,
            elder_id=e.elder_id,
            org_id=org,
            service_day=date(2024, 6, 20),
            bed_id=e.beds[0].bed_id,
        )
    query = {"org_id": str(org), "as_of": "2024-06-30", "satisfaction_pct": 96}
    shipped = (await subsidy.post("/v1/rewards/evaluations", query)).json()
    assert (shipped["active_beds"], shipped["operating_beds"], shipped["tier"]) == (2, 2, None)
    d = doc("xm-tongan-org-reward.yaml")  # a district that sets small tiers and the amounts
    d.update(version=2, status="active")
    d["rewards"][0].update(min_beds=2, yuan=20000)
    d["rewards"][1].update(min_beds=3, yuan=30000)
    assert (await subsidy.post("/v1/policies", d)).status_code == 201
    low = (await subsidy.post("/v1/rewards/evaluations", {**query, "satisfaction_pct": 94})).json()
    assert low["tier"] is None
    assert [(x["code"], x["tier"]) for x in low["reasons"]] == [
        ("satisfaction_too_low", "beds_80"),
        ("too_few_operating_beds", "beds_100"),
        ("satisfaction_too_low", "beds_100"),
    ]
    assert "满意率 94% 未达 95%" in low["reasons"][0]["message"]
    r = await subsidy.post("/v1/rewards", query)
    assert r.status_code == 201, r.text
    assert (r.json()["tier"], r.json()["amount_fen"]) == ("beds_80", 2_000_000)
    assert (await subsidy.post("/v1/rewards", query)).status_code == 409


async def test_run_skips_nothing_for_annual_visit_circle(subsidy, db):
    """A completed draft goes through a run too: per-visit lines from verified visits."""
    d = doc("visit-circle.yaml")
    d.update(code="visit-circle-huli", version=1, status="active", regions=["350206"])
    assert (await subsidy.post("/v1/policies", d)).status_code == 201
    elder = ElderFacts(
        new_id(),
        date(1940, 2, 2),
        "350206",
        "350206",
        living_arrangement="alone",
        applications=(Application("visit-circle-huli", date(2024, 1, 1)),),
    )
    await insert_elder_facts(db, elder)
    org = new_id()
    await ensure_org(db, org, region="350206")
    for day in (3, 10, 17):
        await add_verified_visit(
            db, elder_id=elder.elder_id, org_id=org, service_day=date(2024, 10, day)
        )
    run = await run_month(subsidy, "2024-10", role="admin", region="350206")
    assert run["total_fen"] >= 1_200 + 30_000
    got = dict(
        await db.fetch(
            "SELECT rule, amount_fen FROM subsidy.decision_lines WHERE elder_id = $1",
            elder.elder_id,
        )
    )
    assert got == {"visiting": 1_200, "circle_tier2": 30_000}
    assert (
        await db.fetchval(
            "SELECT amount_fen FROM subsidy.vouchers WHERE elder_id = $1", elder.elder_id
        )
        == 30_000
    )
    _ = (Assessment, Bed, Span)


async def test_equally_specific_policies_answer_with_the_one_that_pays(subsidy, db):
    """Two policies for one district: without policy_code the evaluation answers with the
    one the elder gets most from, and names the other."""
    d = doc("visit-circle.yaml")
    d.update(code="visit-circle-taijiang", version=1, status="active", regions=["350103"])
    assert (await subsidy.post("/v1/policies", d)).status_code == 201
    tongan = doc("xm-tongan-family-bed.yaml")
    tongan.update(code="tongan-copy-taijiang", version=1, regions=["350103"])
    tongan.pop("bed")
    assert (await subsidy.post("/v1/policies", tongan)).status_code == 201
    org = new_id()
    await ensure_org(db, org, region="350103")
    elder = safety_net_elder(org, hukou_region="350103", residence_region="350103")
    await insert_elder_facts(db, elder)
    body = (
        await subsidy.post("/v1/evaluations", {"elder_id": str(elder.elder_id), "month": "2024-05"})
    ).json()
    assert body["policy_code"] == "tongan-copy-taijiang" and body["total_fen"] == 125_000
    assert "visit-circle-taijiang" in body["also_applicable"]
