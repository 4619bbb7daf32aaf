"""Quarterly callbacks (回访抽查, 篇七): at least 5 % of each community's subsidised elders,
drawn reproducibly from the quarter's paid lines, with a written record of each callback."""

from __future__ import annotations

import hashlib
import math
import random
from datetime import date, timedelta

from services.subsidy.common import month_text
from shared import clock
from shared.db import new_id
from tests.integration.subsidy.test_subsidy_runs import run_month, safety_net_elder
from tests.integration.subsidy_helpers import ensure_org, insert_elder_facts


def quarter_of(month) -> str:
    return f"{month.year}Q{(month.month - 1) // 3 + 1}"


def last_quarter_month() -> date:
    """The first month of the last quarter that has ended (a sample needs a whole one)."""
    today = clock.today()
    this_quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    last = this_quarter - timedelta(days=1)
    return date(last.year, 3 * ((last.month - 1) // 3) + 1, 1)


async def test_a_quarter_sample_takes_five_percent_of_each_community_and_records_callbacks(
    subsidy, db
):
    street = f"350212{random.randrange(100, 999)}"
    communities = {f"{street}001": 41, f"{street}002": 19}  # 5 %: 3 (2.05 up) and 1 (0.95 up)
    org = new_id()
    await ensure_org(db, org)
    elders: dict[str, list] = {}
    for community, n in communities.items():
        for _ in range(n):
            facts = safety_net_elder(org, residence_region=community)
            await insert_elder_facts(db, facts)
            elders.setdefault(community, []).append(facts.elder_id)
    month = last_quarter_month()
    await run_month(subsidy, month_text(month), role="admin", region=street)
    officer = {"role": "street", "region": street}
    quarter = quarter_of(month)

    r = await subsidy.post("/v1/callback-samples", {"quarter": quarter}, **officer)
    assert r.status_code == 201, r.text
    sample = r.json()
    assert sample["region"] == street and sample["rate_pct"] == 5
    assert sample["population"] == 60
    by_community = {c["community"]: c for c in sample["communities"]}
    assert {k: (v["population"], v["required"], v["sampled"]) for k, v in by_community.items()} == {
        f"{street}001": (41, 3, 3),
        f"{street}002": (19, 1, 1),
    }
    assert sample["meets_rule"] is False and sample["done"] == 0

    # drawn once: asking again answers the same sample, not a new draw
    again = await subsidy.post("/v1/callback-samples", {"quarter": quarter}, **officer)
    assert again.status_code == 200 and again.json()["id"] == sample["id"]
    # …nor a new draw over a place inside it (or around it) until one suits
    inside = await subsidy.post(
        "/v1/callback-samples", {"quarter": quarter, "region": f"{street}001"}, **officer
    )
    assert inside.status_code == 409, inside.text
    # a quarter still running has no whole population to draw from
    now = clock.today()
    running = f"{now.year}Q{(now.month - 1) // 3 + 1}"
    r = await subsidy.post("/v1/callback-samples", {"quarter": running}, **officer)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "quarter"
    items = (await subsidy.get(f"/v1/callback-samples/{sample['id']}/items", **officer)).json()[
        "items"
    ]
    sampled = {i["elder_id"] for i in items}
    # reproducible: an auditor with the seed and the paid elders draws the same ones
    order = {
        community: [
            str(e)
            for e in sorted(
                ids, key=lambda e: hashlib.md5(f"{sample['seed']}{e}".encode()).hexdigest()
            )
        ]
        for community, ids in elders.items()
    }
    expected = {e for ids in order.values() for e in ids[: math.ceil(len(ids) * 5 / 100)]}
    assert sampled == expected

    path = f"/v1/callback-samples/{sample['id']}/records"
    today = month.replace(day=1).isoformat()
    first, *rest = sorted(sampled)
    unsampled = next(str(e) for ids in elders.values() for e in ids if str(e) not in sampled)
    r = await subsidy.post(
        path,
        {"elder_id": unsampled, "method": "phone", "outcome": "confirmed", "done_on": today},
        headers={"Accept-Language": "en"},
        **officer,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "elder_id"
    assert r.json()["detail"] == "this elder is not in the sample"
    # not reached: may be tried again; reached: the record stands
    body = {"elder_id": first, "method": "phone", "outcome": "unreachable", "done_on": today}
    assert (await subsidy.post(path, body, **officer)).status_code == 201
    # …and the community's next elder in the seeded order joins the sample, once
    assert (await subsidy.post(path, body, **officer)).status_code == 201
    ids = order[next(c for c, ids in order.items() if first in ids)]
    replacement = ids[math.ceil(len(ids) * 5 / 100)]
    items = (await subsidy.get(f"/v1/callback-samples/{sample['id']}/items", **officer)).json()[
        "items"
    ]
    assert {i["elder_id"] for i in items} == sampled | {replacement}
    rest.append(replacement)
    body |= {"method": "home_visit", "outcome": "discrepancy", "note": "服务记录与老人所述不符"}
    r = await subsidy.post(path, body, **officer)
    assert r.status_code == 201 and r.json()["outcome"] == "discrepancy", r.text
    r = await subsidy.post(path, body | {"outcome": "confirmed"}, **officer)
    assert r.status_code == 409
    assert "已记录" in r.json()["detail"]
    for elder in rest:
        body = {"elder_id": elder, "method": "phone", "outcome": "confirmed", "done_on": today}
        assert (await subsidy.post(path, body, **officer)).status_code == 201
    tally = (await subsidy.get(f"/v1/callback-samples/{sample['id']}", **officer)).json()
    assert (tally["sampled"], tally["done"], tally["discrepancies"]) == (5, 5, 1)
    assert tally["meets_rule"] is True
    pending = await subsidy.get(
        f"/v1/callback-samples/{sample['id']}/items", params={"pending": "true"}, **officer
    )
    assert pending.json()["items"] == []

    # a community officer works its own part of the street's sample, and only that
    mine = {"role": "community", "region": f"{street}002"}
    part = (await subsidy.get(f"/v1/callback-samples/{sample['id']}", **mine)).json()
    assert [c["community"] for c in part["communities"]] == [f"{street}002"]
    assert part["population"] == 19
    listed = await subsidy.get(f"/v1/callback-samples/{sample['id']}/items", **mine)
    assert {i["community"] for i in listed.json()["items"]} == {f"{street}002"}
    theirs = next(e for e in order[f"{street}001"])
    r = await subsidy.post(
        path,
        {"elder_id": theirs, "method": "phone", "outcome": "confirmed", "done_on": today},
        **mine,
    )
    assert r.status_code == 404
    # another street sees nothing of it and cannot draw outside its own region
    other = {"role": "street", "region": "350211001"}
    assert (await subsidy.get(f"/v1/callback-samples/{sample['id']}", **other)).status_code == 404
    r = await subsidy.post("/v1/callback-samples", {"quarter": quarter, "region": street}, **other)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "region"
    # caregivers and orgs do not run callbacks
    r = await subsidy.post(
        "/v1/callback-samples", {"quarter": quarter}, role="org_admin", org=str(org)
    )
    assert r.status_code == 403
