"""Vouchers: issued by the run, redeemed against verified visits (each visit paid once),
co-pay never below zero, unused balance lapses; quarterly settlement and its report."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest

from services.subsidy.policies.facts import Application, Assessment, Category, ElderFacts
from shared import clock
from shared.db import new_id
from tests.integration.subsidy.test_subsidy_runs import balance, run_month
from tests.integration.subsidy_helpers import add_verified_visit, ensure_org, insert_elder_facts

SZ = "440304"


def sz_elder(**over) -> ElderFacts:
    base = dict(
        elder_id=new_id(),
        birth_date=date(1950, 5, 5),
        hukou_region=SZ,
        residence_region=SZ,
        categories=(Category("subsistence_allowance", date(2020, 1, 1)),),
        assessments=(Assessment(3, date(2024, 1, 10), date(2030, 1, 1)),),
        applications=(Application("sz-home-care-voucher", date(2024, 6, 1)),),
    )
    base.update(over)
    return ElderFacts(**base)


def last_month() -> date:
    return (clock.today().replace(day=1) - timedelta(days=1)).replace(day=1)


def mtext(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


@pytest.fixture
async def world(subsidy, db):
    elder = sz_elder()
    await insert_elder_facts(db, elder)
    org, other = new_id(), new_id()
    await ensure_org(db, org, region="440304")
    await ensure_org(db, other, region="440304")
    r = await subsidy.post(
        "/v1/vouchers/orgs",
        {"org_id": str(org), "policy_code": "sz-home-care-voucher", "approved_from": "2020-01-01"},
    )
    assert r.status_code == 201, r.text
    month = last_month()
    await run_month(subsidy, mtext(month), role="admin", region="4403")
    return {"elder": elder, "org": org, "other": other, "month": month}


async def test_run_issues_the_months_vouchers(subsidy, world):
    r = await subsidy.get("/v1/vouchers", params={"elder_id": str(world["elder"].elder_id)})
    assert r.status_code == 200
    (v,) = [x for x in r.json()["items"] if x["month"] == str(world["month"])]
    assert (v["amount_fen"], v["balance_fen"], v["fund"]) == (
        50_000,
        50_000,
        "municipal_welfare_lottery",
    )
    assert v["policy_code"] == "sz-home-care-voucher"


async def test_redemptions_against_verified_visits(subsidy, db, world):
    elder, org, month = world["elder"], world["org"], world["month"]
    visits = [
        await add_verified_visit(
            db, elder_id=elder.elder_id, org_id=org, service_day=month + timedelta(days=d)
        )
        for d in (2, 9, 16)
    ]
    as_org = {"role": "org_admin", "org": str(org), "sub": f"org-{org}"}  # one caller
    first = await subsidy.post(
        "/v1/vouchers/redemptions", {"visit_id": str(visits[0]), "price_fen": 30_000}, **as_org
    )
    assert first.status_code == 201, first.text
    assert (first.json()["subsidy_fen"], first.json()["copay_fen"]) == (30_000, 0)
    second = await subsidy.post(
        "/v1/vouchers/redemptions", {"visit_id": str(visits[1]), "price_fen": 30_000}, **as_org
    )
    assert (second.json()["subsidy_fen"], second.json()["copay_fen"]) == (20_000, 10_000)
    third = await subsidy.post(
        "/v1/vouchers/redemptions", {"visit_id": str(visits[2]), "price_fen": 8_000}, **as_org
    )
    assert (third.json()["subsidy_fen"], third.json()["copay_fen"]) == (0, 8_000)
    # a visit is never paid twice — a retry with its key replays, a new request is refused
    again = await subsidy.post(
        "/v1/vouchers/redemptions", {"visit_id": str(visits[0]), "price_fen": 30_000}, **as_org
    )
    assert again.status_code == 409 and again.json()["type"].endswith("visit-already-redeemed")
    key = {"Idempotency-Key": f"redeem-{visits[0]}"}
    extra = await add_verified_visit(
        db, elder_id=elder.elder_id, org_id=org, service_day=month + timedelta(days=20)
    )
    a = await subsidy.post(
        "/v1/vouchers/redemptions",
        {"visit_id": str(extra), "price_fen": 100},
        headers=key,
        **as_org,
    )
    b = await subsidy.post(
        "/v1/vouchers/redemptions",
        {"visit_id": str(extra), "price_fen": 100},
        headers=key,
        **as_org,
    )
    assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"]
    assert b.headers.get("idempotent-replayed") == "true"
    assert await balance(db, elder.elder_id, "allowance") == 0
    owed = await db.fetchval(
        "SELECT sum(amount_fen) FROM subsidy.ledger_entries WHERE org_id = $1 AND account = "
        "'org_payable'",
        org,
    )
    assert owed == 50_000
    copaid = await db.fetchval(
        "SELECT sum(amount_fen) FROM subsidy.ledger_entries WHERE org_id = $1 AND account = "
        "'self_pay'",
        org,
    )
    assert copaid == 10_000 + 8_000 + 100


async def test_redemption_refusals(subsidy, db, world):
    elder, org, other, month = world["elder"], world["org"], world["other"], world["month"]
    visit = await add_verified_visit(
        db, elder_id=elder.elder_id, org_id=other, service_day=month + timedelta(days=3)
    )
    r = await subsidy.post(
        "/v1/vouchers/redemptions",
        {"visit_id": str(visit), "price_fen": 1000},
        role="org_admin",
        org=str(other),
    )
    assert r.status_code == 422 and r.json()["type"].endswith("org-not-approved")
    r = await subsidy.post(
        "/v1/vouchers/redemptions",
        {"visit_id": str(visit), "price_fen": 1000},
        role="org_admin",
        org=str(org),
    )
    assert r.status_code == 403  # another org's visit
    r = await subsidy.post(
        "/v1/vouchers/redemptions",
        {"visit_id": str(new_id()), "price_fen": 1000},
        role="org_admin",
        org=str(org),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "visit_id"
    r = await subsidy.post(
        "/v1/vouchers/redemptions", {"visit_id": str(visit), "price_fen": -1}, role="admin"
    )
    assert r.status_code == 422
    r = await subsidy.post(
        "/v1/vouchers/redemptions",
        {"visit_id": str(visit), "price_fen": 1},
        role="family",
        elder=str(elder.elder_id),
    )
    assert r.status_code == 403


async def test_unused_vouchers_lapse_back_to_the_fund_once(subsidy, db):
    elder = sz_elder()
    await insert_elder_facts(db, elder)
    await run_month(subsidy, "2025-06", role="admin", region="4403")
    assert await balance(db, elder.elder_id, "allowance") == 50_000
    r = await subsidy.post("/v1/vouchers/lapse", {"month": "2025-06"})
    assert r.status_code == 200 and r.json()["lapsed_fen"] >= 50_000
    assert await balance(db, elder.elder_id, "allowance") == 0
    again = await subsidy.post("/v1/vouchers/lapse", {"month": "2025-06"})
    assert again.json() == {"month": "2025-06", "vouchers": 0, "lapsed_fen": 0}


async def test_quarterly_settlement_and_report(subsidy, db, world):
    elder, org, month = world["elder"], world["org"], world["month"]
    visit = await add_verified_visit(
        db, elder_id=elder.elder_id, org_id=org, service_day=month + timedelta(days=5)
    )
    r = await subsidy.post(
        "/v1/vouchers/redemptions",
        {"visit_id": str(visit), "price_fen": 12_345},
        role="org_admin",
        org=str(org),
    )
    assert r.status_code == 201, r.text
    today = clock.today()
    quarter = f"{today.year}Q{(today.month - 1) // 3 + 1}"
    r = await subsidy.post("/v1/settlements", {"quarter": quarter, "org_id": str(org)})
    assert r.status_code == 201, r.text
    (s,) = r.json()["settlements"]
    assert s["amount_fen"] == 12_345 and s["by_fund"] == {"municipal_welfare_lottery": 12_345}
    assert (await subsidy.post("/v1/settlements", {"quarter": quarter, "org_id": str(org)})).json()[
        "settlements"
    ] == []
    # the org sees its own settlement, not others'
    mine = await subsidy.get("/v1/settlements", role="org_admin", org=str(org))
    assert [x["id"] for x in mine.json()["items"]] == [s["id"]]
    theirs = await subsidy.get("/v1/settlements", role="org_admin", org=str(world["other"]))
    assert theirs.json()["items"] == []
    assert (
        await subsidy.get(f"/v1/settlements/{s['id']}", role="org_admin", org=str(world["other"]))
    ).status_code == 404
    csv_report = await subsidy.get(
        f"/v1/settlements/{s['id']}/report", role="org_admin", org=str(org)
    )
    assert csv_report.status_code == 200 and csv_report.headers["content-type"].startswith(
        "text/csv"
    )
    body = csv_report.content.decode("utf-8-sig")
    assert str(visit) in body and "123.45" in body and "消费券核销" in body
    xlsx = await subsidy.get(f"/v1/settlements/{s['id']}/report", params={"format": "xlsx"})
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["汇总", "消费券核销", "直接补贴", "消费券发放"]
    assert any(str(visit) in str(c.value) for row in book["消费券核销"].iter_rows() for c in row)
    paid = await db.fetchval(
        "SELECT sum(amount_fen) FROM subsidy.ledger_entries WHERE org_id = $1 AND account = "
        "'disbursed'",
        org,
    )
    assert paid == 12_345
