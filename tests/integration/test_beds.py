"""Bed eligibility, lifecycle and modifications against real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from shared import clock
from tests.integration.builders import make_bed, make_elder, make_org


def reason_codes(response) -> set[str]:
    return {r["code"] for r in response.json()["reasons"]}


async def test_eligible_elder_gets_an_active_bed(registry):
    org = await make_org(registry)
    elder = await make_elder(registry)
    bed = await make_bed(registry, elder, org)
    assert bed["status"] == "active"
    assert bed["started_on"] == str(clock.today())
    assert bed["policy_code"] == "xm-tongan-family-bed"
    preview = (await registry.get(f"/v1/elders/{elder['id']}/bed-eligibility")).json()
    assert preview["eligible"] is False
    assert [r["code"] for r in preview["reasons"]] == ["open_bed_exists"]


async def test_every_failed_condition_is_listed(registry):
    org = await make_org(registry)
    elder = await make_elder(
        registry, level=None, caregiver=False, living_arrangement="alone", lives_at_home=False
    )
    r = await registry.post(
        "/v1/beds",
        {"elder_id": elder["id"], "org_id": org["id"], "station_id": org["station"]["id"]},
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/bed-ineligible")
    assert reason_codes(r) == {
        "no_assessment",
        "no_coresident_caregiver",
        "lives_alone",
        "not_living_at_home",
    }
    assert all(reason["message"] for reason in r.json()["reasons"])


async def test_intact_elder_is_refused_and_mild_is_enough(registry):
    org = await make_org(registry)
    intact = await make_elder(registry, level=0)
    r = await registry.post(
        "/v1/beds",
        {"elder_id": intact["id"], "org_id": org["id"], "station_id": org["station"]["id"]},
    )
    assert r.status_code == 422
    assert reason_codes(r) == {"level_below_minimum"}
    mild = await make_elder(registry, level=1)
    await make_bed(registry, mild, org)


async def test_expired_assessment_is_refused(registry):
    org = await make_org(registry)
    elder = await make_elder(registry, level=None)
    r = await registry.post(
        f"/v1/elders/{elder['id']}/assessments",
        {"level": 3, "assessed_on": "2020-01-01", "assessor": "x"},
    )
    assert r.status_code == 201
    r = await registry.post(
        "/v1/beds",
        {"elder_id": elder["id"], "org_id": org["id"], "station_id": org["station"]["id"]},
    )
    assert reason_codes(r) == {"assessment_expired"}


async def test_one_open_bed_per_elder_even_under_concurrency(registry):
    org = await make_org(registry)
    elder = await make_elder(registry)
    body = {"elder_id": elder["id"], "org_id": org["id"], "station_id": org["station"]["id"]}
    results = await asyncio.gather(*[registry.post("/v1/beds", body) for _ in range(4)])
    assert sorted(r.status_code for r in results) == [201, 422, 422, 422]


async def test_station_must_belong_to_org(registry):
    org, other = await make_org(registry), await make_org(registry)
    elder = await make_elder(registry)
    r = await registry.post(
        "/v1/beds",
        {"elder_id": elder["id"], "org_id": org["id"], "station_id": other["station"]["id"]},
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"station_id"}


async def test_lifecycle(registry):
    org = await make_org(registry)
    elder = await make_elder(registry)
    bed = await make_bed(registry, elder, org)
    path = f"/v1/beds/{bed['id']}"
    r = await registry.post(f"{path}/resume")
    assert r.status_code == 409
    assert r.json()["allowed"] == ["suspend", "terminate"]
    r = await registry.post(f"{path}/suspend", {"reason": "住院"})
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    r = await registry.post(f"{path}/resume")
    assert r.json()["status"] == "active"
    r = await registry.post(f"{path}/terminate", {})
    assert r.status_code == 422  # a reason is required
    r = await registry.post(f"{path}/terminate", {"reason": "入住机构"})
    assert r.json()["status"] == "terminated" and r.json()["terminated_on"] == str(clock.today())
    events = (await registry.get(f"{path}/events")).json()
    assert [e["to_status"] for e in events["items"]] == [
        "active",
        "suspended",
        "active",
        "terminated",
    ]
    assert events["next_cursor"] is None
    first = (await registry.get(f"{path}/events", params={"limit": 3})).json()
    rest = (
        await registry.get(f"{path}/events", params={"limit": 3, "cursor": first["next_cursor"]})
    ).json()
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in events["items"]]
    # a terminated bed frees the elder for a new one
    await make_bed(registry, elder, org)


async def test_applied_bed_is_activated_later(registry):
    org = await make_org(registry)
    elder = await make_elder(registry)
    r = await registry.post(
        "/v1/beds",
        {
            "elder_id": elder["id"],
            "org_id": org["id"],
            "station_id": org["station"]["id"],
            "status": "applied",
        },
    )
    assert r.status_code == 201 and r.json()["status"] == "applied"
    assert r.json()["started_on"] is None
    r = await registry.post(f"/v1/beds/{r.json()['id']}/activate")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"


async def test_modifications(registry):
    org = await make_org(registry)
    bed = await make_bed(registry, await make_elder(registry), org)
    path = f"/v1/beds/{bed['id']}/modifications"
    done = clock.today() - timedelta(days=10)
    r = await registry.post(
        path,
        {
            "kind": "aging_adaptation",
            "item": "卫生间扶手",
            "cost_fen": 120_000,
            "done_on": str(done),
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["warranty_until"] == str(done + timedelta(days=365))
    assert r.json()["under_warranty"] is True
    bad = [
        ({"cost_fen": -1}, "cost_fen"),
        ({"cost_fen": 12.5}, "cost_fen"),
        ({"cost_fen": "100"}, "cost_fen"),
        ({"kind": "paint"}, "kind"),
        ({"warranty_until": str(done + timedelta(days=100))}, "warranty_until"),
        ({"done_on": str(clock.today() + timedelta(days=5))}, "done_on"),
    ]
    for override, field in bad:
        body = {
            "kind": "smart",
            "item": "紧急呼叫按钮",
            "cost_fen": 30_000,
            "done_on": str(done),
            **override,
        }
        r = await registry.post(path, body)
        assert r.status_code == 422, (override, r.text)
        assert field in {e["field"] for e in r.json()["errors"]}, (override, r.text)
    listed = (await registry.get(path)).json()
    assert [m["item"] for m in listed["items"]] == ["卫生间扶手"]


async def test_caregiver_moving_out_ends_eligibility(registry):
    elder = await make_elder(registry)
    caregivers = (await registry.get(f"/v1/elders/{elder['id']}/family-caregivers")).json()
    r = await registry.patch(
        f"/v1/elders/{elder['id']}/family-caregivers/{caregivers['items'][0]['id']}",
        {"lives_with": False},
    )
    assert r.status_code == 200 and r.json()["lives_with"] is False
    preview = (await registry.get(f"/v1/elders/{elder['id']}/bed-eligibility")).json()
    assert [x["code"] for x in preview["reasons"]] == ["no_coresident_caregiver"]


async def test_an_org_cannot_certify_its_own_elders_level(registry):
    org = await make_org(registry)
    elder = await make_elder(registry, level=None)
    r = await registry.post(
        f"/v1/elders/{elder['id']}/assessments",
        {"level": 3, "assessed_on": "2026-01-01", "assessor": "x"},
        role="org_admin",
        org=org["id"],
    )
    assert r.status_code == 403


async def test_a_later_assessment_does_not_backdate_eligibility(registry):
    org = await make_org(registry)
    as_org = {"role": "org_admin", "org": org["id"]}
    elder = await make_elder(registry, level=None, creator=as_org)  # assessed 3 days ago below
    r = await registry.post(
        f"/v1/elders/{elder['id']}/assessments",
        {
            "level": 2,
            "assessed_on": str(clock.today() - timedelta(days=3)),
            "assessor": "第三方评估机构",
        },
    )
    assert r.status_code == 201
    body = {"elder_id": elder["id"], "org_id": org["id"], "station_id": org["station"]["id"]}
    r = await registry.post(
        "/v1/beds", {**body, "started_on": str(clock.today() - timedelta(days=10))}
    )
    assert r.status_code == 422
    assert reason_codes(r) == {"no_assessment"}  # nothing was in force ten days ago
    # far back, an org must say why (never a bare refusal) ...
    ninety = str(clock.today() - timedelta(days=90))
    r = await registry.post("/v1/beds", {**body, "started_on": ninety}, **as_org)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "backdate_reason"
    # ... and with a reason, or as civil affairs, eligibility is judged on that day
    for claims in (as_org, {"role": "admin"}):
        extra = {"backdate_reason": "纸质台账补录"} if claims is as_org else {}
        r = await registry.post("/v1/beds", {**body, "started_on": ninety, **extra}, **claims)
        assert r.status_code == 422 and reason_codes(r) == {"no_assessment"}, r.text
    r = await registry.post(
        "/v1/beds", {**body, "started_on": str(clock.today() - timedelta(days=2))}
    )
    assert r.status_code == 201
