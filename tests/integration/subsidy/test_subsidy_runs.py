"""Monthly runs: decision records, idempotent re-runs, reversals when facts change, frozen
facts, and the ledger the database keeps honest."""

from __future__ import annotations

import uuid
from datetime import date

import asyncpg
import pytest

from services.subsidy.policies.facts import Assessment, Bed, Category, ElderFacts, Span
from shared.db import new_id
from tests.integration.subsidy_helpers import ensure_org, insert_elder_facts
from tests.waiting import eventually

REGION = "350212"


def safety_net_elder(org: uuid.UUID, **over) -> ElderFacts:
    elder_id = new_id()
    base = dict(
        elder_id=elder_id,
        birth_date=date(1948, 2, 2),
        hukou_region=REGION,
        residence_region=REGION,
        categories=(Category("subsistence_allowance", date(2020, 1, 1)),),
        assessments=(Assessment(2, date(2023, 6, 1), date(2025, 6, 1)),),
        beds=(Bed(new_id(), org, (Span(date(2023, 7, 1)),), "xm-tongan-family-bed"),),
    )
    base.update(over)
    return ElderFacts(**base)


async def run_month(subsidy, month: str, **claims) -> dict:
    r = await subsidy.post(
        "/v1/runs", {"month": month}, **(claims or {"role": "admin", "region": REGION})
    )
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    # answered before the request commits: no worker can have claimed it yet
    assert r.json()["status"] == "queued"

    async def done():
        got = (await subsidy.get(f"/v1/runs/{run_id}", role="admin")).json()
        return got if got["status"] in ("succeeded", "failed") else None

    run = await eventually(done, within=60)
    assert run["status"] == "succeeded", run
    assert run["progress"] == 1.0 and run["elders_done"] == run["elders_total"] > 0
    return run


async def lines_of(db: asyncpg.Connection, elder_id: uuid.UUID, month: date) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT rule, sum(amount_fen) FROM subsidy.decision_lines WHERE elder_id = $1 AND month "
        "= $2"
        " AND reversed_by IS NULL GROUP BY rule",
        elder_id,
        month,
    )
    return {r[0]: int(r[1]) for r in rows}


async def balance(db, elder_id, account) -> int:
    return int(
        await db.fetchval(
            "SELECT coalesce(sum(amount_fen), 0) FROM subsidy.ledger_entries WHERE elder_id = $1 "
            "AND account = $2",
            elder_id,
            account,
        )
    )


@pytest.fixture
async def org(db) -> uuid.UUID:
    org_id = new_id()
    await ensure_org(db, org_id)
    return org_id


async def test_run_writes_decisions_and_a_balanced_ledger_and_is_idempotent(subsidy, db, org):
    elder = safety_net_elder(org)
    await insert_elder_facts(db, elder)
    month = date(2024, 3, 1)
    first = await run_month(subsidy, "2024-03")
    assert first["decisions_written"] >= 1 and first["postings"] >= 2
    assert await lines_of(db, elder.elder_id, month) == {
        "operating": 25_000,
        "nursing_semi": 100_000,
    }
    assert await balance(db, elder.elder_id, "org_payable") == 125_000
    assert await balance(db, elder.elder_id, "fund") == -125_000
    decision = await db.fetchrow(
        "SELECT facts, policy_hash, verdicts FROM subsidy.decisions WHERE elder_id = $1",
        elder.elder_id,
    )
    assert decision["policy_hash"] and '"nursing_total"' in decision["verdicts"]
    assert str(elder.elder_id) in decision["facts"]  # the facts are frozen with the record

    again = await run_month(subsidy, "2024-03")
    assert again["decisions_written"] == 0 and again["postings"] == 0 and again["reversals"] == 0
    assert again["decisions_unchanged"] >= first["decisions_written"]
    assert again["total_fen"] == first["total_fen"]
    assert await balance(db, elder.elder_id, "org_payable") == 125_000


async def test_changed_facts_reverse_and_repost_only_the_difference(subsidy, db, org):
    elder = safety_net_elder(org)
    await insert_elder_facts(db, elder)
    month = date(2024, 4, 1)
    await run_month(subsidy, "2024-04")
    assert await lines_of(db, elder.elder_id, month) == {
        "operating": 25_000,
        "nursing_semi": 100_000,
    }
    # 低保 ends on 15 April: the nursing line shrinks, the operating line stays
    await db.execute(
        "UPDATE registry.categories SET valid_to = '2024-04-15' WHERE elder_id = $1", elder.elder_id
    )
    rerun = await run_month(subsidy, "2024-04")
    assert rerun["reversals"] == 1 and rerun["postings"] == 1
    assert await lines_of(db, elder.elder_id, month) == {
        "operating": 25_000,
        "nursing_semi": 50_000,
    }
    assert await balance(db, elder.elder_id, "org_payable") == 75_000
    kinds = await db.fetch(
        "SELECT kind, rule, reverses IS NOT NULL AS r FROM subsidy.ledger_postings WHERE "
        "elder_id = $1"
        " ORDER BY created_at",
        elder.elder_id,
    )
    assert [(k["kind"], k["rule"]) for k in kinds].count(("reversal", "nursing_semi")) == 1
    unbalanced = await db.fetchval(
        "SELECT count(*) FROM (SELECT posting_id FROM subsidy.ledger_entries GROUP BY posting_id"
        " HAVING sum(amount_fen) <> 0) t"
    )
    assert unbalanced == 0


async def test_decisions_are_explained_from_their_frozen_facts(subsidy, db, org):
    elder = safety_net_elder(org)
    await insert_elder_facts(db, elder)
    await run_month(subsidy, "2024-02")
    # facts change after the run; the record still explains what was decided, and why
    await db.execute("DELETE FROM registry.categories WHERE elder_id = $1", elder.elder_id)
    r = await subsidy.get(
        "/v1/decisions", params={"elder_id": str(elder.elder_id), "month": "2024-02"}
    )
    assert r.status_code == 200, r.text
    (record,) = [d for d in r.json()["items"] if d["policy_code"] == "xm-tongan-family-bed"]
    assert record["current"] is True
    rules = {line["rule"]: line["amount_fen"] for line in record["evaluation"]["lines"]}
    assert rules == {"operating": 25_000, "nursing_semi": 100_000}
    assert "低保" in record["evaluation"]["lines"][1]["explanation"]
    live = await subsidy.post(
        "/v1/evaluations", {"elder_id": str(elder.elder_id), "month": "2024-02"}
    )
    assert {x["rule"] for x in live.json()["lines"]} == {"operating"}


async def test_ledger_refuses_edits_unbalanced_postings_and_closed_months(subsidy, db, org):
    elder = safety_net_elder(org)
    await insert_elder_facts(db, elder)
    await run_month(subsidy, "2023-11")
    with pytest.raises(asyncpg.exceptions.IntegrityConstraintViolationError):
        await db.execute(
            "UPDATE subsidy.ledger_entries SET amount_fen = 0 WHERE elder_id = $1", elder.elder_id
        )
    with pytest.raises(asyncpg.exceptions.IntegrityConstraintViolationError):
        await db.execute("DELETE FROM subsidy.ledger_postings WHERE elder_id = $1", elder.elder_id)
    posting = new_id()
    async with db.transaction():
        await db.execute(
            "INSERT INTO subsidy.ledger_postings (id, period, kind, created_by) VALUES ($1, "
            "'2023-11-01', 'manual', 't')",
            posting,
        )
        with pytest.raises(asyncpg.exceptions.CheckViolationError, match="does not balance"):
            await db.execute(
                "INSERT INTO subsidy.ledger_entries (posting_id, period, account, fund, amount_fen)"
                " VALUES ($1, '2023-11-01', 'fund', 'district_finance', -100)",
                posting,
            )
    r = await subsidy.post("/v1/ledger/periods/2023-11/close", role="admin")
    assert r.status_code == 200 and r.json()["closed_at"]
    with pytest.raises(asyncpg.exceptions.CheckViolationError, match="closed"):
        await db.execute(
            "INSERT INTO subsidy.ledger_postings (id, period, kind, created_by) VALUES ($1, "
            "'2023-11-01', 'manual', 't')",
            new_id(),
        )
    with pytest.raises(asyncpg.exceptions.CheckViolationError, match="closed for good"):
        await db.execute(
            "UPDATE subsidy.ledger_periods SET closed_at = NULL WHERE month = '2023-11-01'"
        )
    # a correction of the closed month is booked in the current (open) period
    await db.execute(
        "UPDATE registry.categories SET valid_to = '2023-11-10' WHERE elder_id = $1", elder.elder_id
    )
    rerun = await run_month(subsidy, "2023-11")
    assert rerun["reversals"] == 1
    periods = await db.fetch(
        "SELECT DISTINCT period FROM subsidy.ledger_postings WHERE elder_id = $1 AND kind = "
        "'reversal'",
        elder.elder_id,
    )
    assert [p[0] for p in periods] != [date(2023, 11, 1)]


async def test_runs_need_an_admin_and_a_valid_month(subsidy):
    assert (await subsidy.post("/v1/runs", {"month": "2024-13"})).status_code == 422
    assert (
        await subsidy.post("/v1/runs", {"month": "2024-01"}, role="community", region=REGION)
    ).status_code == 403
    r = await subsidy.get(f"/v1/runs/{new_id()}")
    assert r.status_code == 404


async def test_a_region_officer_sees_only_runs_over_their_region(subsidy):
    run = await run_month(subsidy, "2023-08", role="admin", region="350212")
    path = f"/v1/runs/{run['id']}"
    assert (await subsidy.get(path, role="community", region="350212001")).status_code == 200
    assert (await subsidy.get(path, role="street", region="3502")).status_code == 200
    assert (await subsidy.get(path, role="community", region="350213")).status_code == 404
    listed = await subsidy.get(
        "/v1/runs", params={"month": "2023-08"}, role="community", region="350213"
    )
    assert run["id"] not in {r["id"] for r in listed.json()["items"]}


async def test_a_region_admins_run_covers_only_its_region(subsidy, db, org):
    """The run's scope is the shared rule (hukou or residence under the prefix), both for the
    elders it evaluates and for the decisions in force it compares with."""
    street = "350212987"  # a street of 同安区 no other test uses
    by_residence = safety_net_elder(org, residence_region=street)
    by_hukou = safety_net_elder(org, hukou_region=street, residence_region=REGION)
    outside = safety_net_elder(org, residence_region="350212986")
    for e in (by_residence, by_hukou, outside):
        await insert_elder_facts(db, e)
    run = await run_month(subsidy, "2024-01", role="admin", region=street)
    assert run["region"] == street and run["elders_total"] == 2
    assert await decided_by(db, run) == {by_residence.elder_id, by_hukou.elder_id}
    for e in (by_residence, by_hukou):
        assert await lines_of(db, e.elder_id, date(2024, 1, 1)) == {
            "operating": 25_000,
            "nursing_semi": 100_000,
        }
    assert await lines_of(db, outside.elder_id, date(2024, 1, 1)) == {}
    # the decisions in force are found by the same rule: a re-run writes nothing
    again = await run_month(subsidy, "2024-01", role="admin", region=street)
    assert (again["decisions_written"], again["postings"], again["reversals"]) == (0, 0, 0)
    assert again["decisions_unchanged"] == run["decisions_written"]
    neighbour = await run_month(subsidy, "2024-01", role="admin", region="350212986")
    assert neighbour["elders_total"] == 1
    assert await decided_by(db, neighbour) == {outside.elder_id}


async def decided_by(db: asyncpg.Connection, run: dict) -> set[uuid.UUID]:
    rows = await db.fetch(
        "SELECT DISTINCT elder_id FROM subsidy.decisions WHERE run_id = $1", uuid.UUID(run["id"])
    )
    return {r[0] for r in rows}


async def test_chunked_runs_give_the_same_result(subsidy, db, org, monkeypatch):
    from services.subsidy.runs import worker

    elders = [safety_net_elder(org) for _ in range(5)]
    for e in elders:
        await insert_elder_facts(db, e)
    monkeypatch.setattr(worker, "CHUNK_ELDERS", 3)  # many chunks, boundaries between elders
    run = await run_month(subsidy, "2023-10")
    assert run["elders_done"] == run["elders_total"]
    for e in elders:
        assert await lines_of(db, e.elder_id, date(2023, 10, 1)) == {
            "operating": 25_000,
            "nursing_semi": 100_000,
        }
    again = await run_month(subsidy, "2023-10")
    assert again["decisions_written"] == 0 and again["postings"] == 0


async def test_balances_per_fund_elder_and_org(subsidy, db, org):
    elder = safety_net_elder(org)
    await insert_elder_facts(db, elder)
    await run_month(subsidy, "2023-12")
    funds = (await subsidy.get("/v1/ledger/balances")).json()
    fund = {(b["account"], b["fund"]): b["balance_fen"] for b in funds["items"]}
    assert fund[("fund", "district_finance")] < 0 and funds["next_cursor"] is None
    mine = await subsidy.get(
        "/v1/ledger/balances", params={"by": "org"}, role="org_admin", org=str(org)
    )
    assert mine.status_code == 200
    assert {(b["org_id"], b["account"]): b["balance_fen"] for b in mine.json()["items"]} == {
        (str(org), "org_payable"): 125_000
    }
    r = await subsidy.get(
        "/v1/ledger/balances", params={"by": "fund"}, role="community", region=REGION
    )
    assert r.status_code == 403
    page = await subsidy.get("/v1/ledger/balances", params={"by": "org", "limit": 1})
    assert len({b["org_id"] for b in page.json()["items"]}) == 1 and page.json()["next_cursor"]
    entries = await subsidy.get(
        "/v1/ledger/entries",
        params={"elder_id": str(elder.elder_id)},
        role="community",
        region=REGION,
    )
    assert sum(e["amount_fen"] for e in entries.json()["items"]) == 0  # every posting balances
    other = await subsidy.get(
        "/v1/ledger/entries",
        params={"elder_id": str(elder.elder_id)},
        role="community",
        region="350213",
    )
    assert other.json()["items"] == []
