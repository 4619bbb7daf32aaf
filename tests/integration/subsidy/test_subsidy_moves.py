"""A move mid-month through the real path: the registry records it (POST /v1/elders/{id}/moves),
subsidy reads the residence history from PostgreSQL, POST /v1/evaluations prorates by day."""

from __future__ import annotations

import random
import uuid
from datetime import date

from services.subsidy.policies.facts import Assessment, Move
from shared.db import new_id
from tests.integration.subsidy.test_subsidy_runs import lines_of, run_month, safety_net_elder
from tests.integration.subsidy_helpers import ensure_org, insert_elder_facts
from tests.waiting import eventually

TONGAN, SIMING = "350212", "350203"
MONTH = "2025-04"  # 30 days; the elder is a 兜底 object with a moderate disability and a bed
MOVED_ON = "2025-04-11"


async def _elder(db, hukou: str) -> str:
    org = new_id()
    await ensure_org(db, org)
    facts = safety_net_elder(
        org,
        hukou_region=hukou,
        residence_region=hukou,
        assessments=(Assessment(2, date(2024, 6, 1), date(2026, 6, 1)),),
        moves=(Move(date(1948, 2, 2), hukou, hukou),),  # registered there, as the registry keeps
    )
    await insert_elder_facts(db, facts, name="迁居老人")
    return str(facts.elder_id)


async def _move(registry, elder_id: str, to: str) -> None:
    r = await registry.post(
        f"/v1/elders/{elder_id}/moves",
        {"residence_region": to, "hukou_region": to, "moved_on": MOVED_ON, "reason": "户口迁移"},
    )
    assert r.status_code == 201, r.text


async def test_an_elder_who_moves_away_mid_month_is_paid_for_the_days_before(subsidy, registry, db):
    elder_id = await _elder(db, TONGAN)
    await _move(registry, elder_id, SIMING)
    # no policy code: the policy is found by the hukou held in April (同安区 until the 10th)
    r = await subsidy.post("/v1/evaluations", {"elder_id": elder_id, "month": MONTH})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["policy_code"] == "xm-tongan-family-bed"
    lines = {line["rule"]: line for line in body["lines"]}
    # 250 × 10/30 = 83.333… → 83.33; 1000 × 10/30 = 333.333… → 333.33
    assert {k: v["amount_fen"] for k, v in lines.items()} == {
        "operating": 8333,
        "nursing_semi": 33333,
    }
    assert body["total_fen"] == 41666
    assert lines["operating"]["days"] == 10
    assert "老人于 2025-04-11 迁居" in lines["operating"]["explanation"]
    assert "350212（同安区） → 350203（思明区）" in lines["operating"]["explanation"]
    en = await subsidy.post(
        "/v1/evaluations",
        {"elder_id": elder_id, "month": MONTH},
        headers={"Accept-Language": "en"},
    )
    assert "the elder moved on 2025-04-11" in en.json()["lines"][0]["explanation"]
    # the month after: nothing (hukou and residence in 思明区 all month)
    may = await subsidy.post(
        "/v1/evaluations",
        {"elder_id": elder_id, "month": "2025-05", "policy_code": "xm-tongan-family-bed"},
    )
    assert may.status_code == 200 and may.json()["total_fen"] == 0
    assert {x["rule"]: x["code"] for x in may.json()["refused"]}["operating"] == "not_eligible"
    # and the month before was a whole one
    march = await subsidy.post("/v1/evaluations", {"elder_id": elder_id, "month": "2025-03"})
    assert march.status_code == 200 and march.json()["total_fen"] == 125000


async def test_an_elder_who_moves_in_mid_month_gets_the_rest_of_it(subsidy, registry, db):
    elder_id = await _elder(db, SIMING)
    await _move(registry, elder_id, TONGAN)
    r = await subsidy.post("/v1/evaluations", {"elder_id": elder_id, "month": MONTH})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["policy_code"] == "xm-tongan-family-bed"
    lines = {line["rule"]: line for line in body["lines"]}
    # 250 × 20/30 = 166.666… → 166.67; 1000 × 20/30 = 666.666… → 666.67
    assert {k: v["amount_fen"] for k, v in lines.items()} == {
        "operating": 16667,
        "nursing_semi": 66667,
    }
    assert body["total_fen"] == 83334
    assert lines["nursing_semi"]["days"] == 20
    assert "老人于 2025-04-11 迁居" in lines["nursing_semi"]["explanation"]
    # before the move no policy covered the elder's hukou (思明区)
    march = await subsidy.post("/v1/evaluations", {"elder_id": elder_id, "month": "2025-03"})
    assert march.status_code == 422 and march.json()["type"].endswith("no-policy")


async def test_a_monthly_run_pays_the_days_before_a_move_away(subsidy, registry, db):
    """The run of the region the elder left still covers them for that month (their current
    columns already name the new place) and pays the days before the move — the same lines
    as the evaluation, not a reversal of the month; a re-run changes nothing."""
    street = f"{TONGAN}{random.randrange(100, 999)}"
    elder_id = await _elder(db, street)
    await _move(registry, elder_id, SIMING)
    run = await run_month(subsidy, MONTH, role="admin", region=street)
    assert run["elders_total"] == 1
    assert await lines_of(db, uuid.UUID(elder_id), date(2025, 4, 1)) == {
        "operating": 8333,
        "nursing_semi": 33333,
    }
    again = await run_month(subsidy, MONTH, role="admin", region=street)
    assert (again["decisions_written"], again["reversals"]) == (0, 0)


async def test_a_run_does_not_take_back_an_elder_who_left_long_ago(subsidy, registry, db):
    """Moved away from the street in 2024 and moved again (elsewhere) this month: the street's
    run has nothing to do with them — only a place in force during the month counts."""
    street = f"{TONGAN}{random.randrange(100, 999)}"
    elder_id = await _elder(db, street)
    r = await registry.post(
        f"/v1/elders/{elder_id}/moves",
        {"residence_region": SIMING, "hukou_region": SIMING, "moved_on": "2024-01-01"},
    )
    assert r.status_code == 201, r.text
    r = await registry.post(
        f"/v1/elders/{elder_id}/moves", {"residence_region": "350206", "moved_on": MOVED_ON}
    )
    assert r.status_code == 201, r.text
    r = await subsidy.post("/v1/runs", {"month": MONTH}, role="admin", region=street)
    assert r.status_code == 201, r.text

    async def done():
        got = (await subsidy.get(f"/v1/runs/{r.json()['id']}", role="admin")).json()
        return got if got["status"] in ("succeeded", "failed") else None

    run = await eventually(done, within=60)
    assert (run["status"], run["elders_total"]) == ("succeeded", 0)


async def test_a_move_recorded_late_is_reversed_by_the_run_that_paid(subsidy, registry, db):
    """April was paid by the street's run; then a move to 思明 dated in March is recorded.
    The elder is no longer the street's by any column, but the street's re-run of April still
    takes them and reverses what April paid."""
    street = f"{TONGAN}{random.randrange(100, 999)}"
    elder_id = await _elder(db, street)
    await run_month(subsidy, MONTH, role="admin", region=street)
    april = date(2025, 4, 1)
    assert sum((await lines_of(db, uuid.UUID(elder_id), april)).values()) == 125000
    r = await registry.post(
        f"/v1/elders/{elder_id}/moves",
        {"residence_region": SIMING, "hukou_region": SIMING, "moved_on": "2025-03-01"},
    )
    assert r.status_code == 201, r.text
    again = await run_month(subsidy, MONTH, role="admin", region=street)
    assert again["reversals"] >= 1
    assert await lines_of(db, uuid.UUID(elder_id), april) == {}
