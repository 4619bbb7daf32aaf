"""Coverage (estimate and a fake OSRM/Valhalla), compliance of a bed and an org, plans
generated into visits, and the day's assignment (VROOM and greedy), against real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.dispatch import policy as dispatch_policy
from services.dispatch.coverage.travel import EstimateTravel, RoutingEngineTravel
from shared import clock
from tests.integration.builders import make_bed, make_elder, make_org
from tests.integration.dispatch_helpers import add_station, caregiver, make_staff, serving

HOME = (24.7236, 118.1520)


@pytest.fixture
async def db(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def test_coverage_check_urban_limit_and_estimate_method(registry, dispatch):
    org = await make_org(registry)
    elder = await make_elder(registry)
    far = await add_station(registry, org, HOME[0] + 0.06, HOME[1])  # ~6.7 km, ~36 min by e-bike
    r = await dispatch.post(
        "/v1/coverage/check", {"station_id": org["station"]["id"], "elder_id": elder["id"]}
    )
    assert r.status_code == 200, r.text
    near = r.json()
    assert near["within_radius"] and near["limit_minutes"] == 15 and near["method"] == "estimate"
    r = await dispatch.post(
        "/v1/coverage/check", {"station_id": far["id"], "elder_id": elder["id"]}
    )
    out = r.json()
    assert not out["within_radius"] and out["travel_minutes"] > 15
    rural = await make_elder(registry, zone="rural")
    r = await dispatch.post(
        "/v1/coverage/check", {"station_id": far["id"], "elder_id": rural["id"]}
    )
    assert r.json()["limit_minutes"] == 30 and r.json()["within_radius"]


async def test_bulk_coverage_nearest_station_outside_list_and_csv(registry, dispatch):
    org = await make_org(registry)
    inside = await make_bed(registry, await make_elder(registry), org)
    far_elder = await make_elder(registry, lat=HOME[0] + 0.2, lon=HOME[1])
    outside = await make_bed(registry, far_elder, org)
    r = await dispatch.post(
        "/v1/coverage/bulk", {"org_id": org["id"]}, role="org_admin", org=org["id"]
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["beds"] == 2 and report["outside"] == 1
    assert [i["bed_id"] for i in report["items"]] == [outside["id"]]
    r = await dispatch.get(
        "/v1/coverage/bulk.csv", role="org_admin", org=org["id"], params={"org_id": org["id"]}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert (
        lines[0].startswith("bed_id,")
        and len(lines) == 3
        and any(inside["id"] in ln for ln in lines)
    )


def fake_engine(calls: list, fail_after: int | None = None) -> Starlette:
    async def osrm(request: Request):
        calls.append(("osrm", request.path_params["coords"], dict(request.query_params)))
        if fail_after is not None and len(calls) > fail_after:
            return JSONResponse({"code": "Error"}, status_code=500)
        coords = request.path_params["coords"].split(";")
        src = [int(i) for i in request.query_params["sources"].split(";")]
        dst = [int(i) for i in request.query_params["destinations"].split(";")]
        n = min(dst)  # destinations follow the sources in the coordinate list
        return JSONResponse(
            {
                "code": "Ok",
                "durations": [[60.0 * (1 + s + d - n) for d in dst] for s in src],
                "n": len(coords),
            }
        )

    async def valhalla(request: Request):
        body = await request.json()
        calls.append(("valhalla", len(body["sources"]), len(body["targets"])))
        return JSONResponse(
            {
                "sources_to_targets": [
                    [{"time": 120.0} for _ in body["targets"]] for _ in body["sources"]
                ]
            }
        )

    return Starlette(
        routes=[
            Route("/table/v1/driving/{coords:path}", osrm),
            Route("/sources_to_targets", valhalla, methods=["POST"]),
        ]
    )


async def test_routing_engine_batches_within_its_limit_and_falls_back_to_the_estimate():
    policy = dispatch_policy.load()
    calls: list = []
    src = np.array([[24.70 + i * 0.001, 118.15] for i in range(7)])
    dst = np.array([[24.72, 118.16 + j * 0.001] for j in range(5)])
    with serving(fake_engine(calls)) as engine:
        osrm = RoutingEngineTravel(policy, engine="osrm", base_url=engine.url, max_matrix=6)
        m = await osrm.matrix(src, dst, zone="urban")
        assert m.method == "osrm" and m.minutes.shape == (7, 5)
        assert all(len(c[1].split(";")) <= 6 for c in calls)  # never more locations than the limit
        assert m.minutes[0, 0] == 1.0  # seconds → minutes, from the engine
        valhalla = RoutingEngineTravel(
            policy, engine="valhalla", base_url=engine.url, max_matrix=100
        )
        v = await valhalla.matrix(src, dst, zone="urban")
        assert v.method == "valhalla" and np.allclose(v.minutes, 2.0)
    with serving(fake_engine(calls := [], fail_after=1)) as engine:
        m = await RoutingEngineTravel(
            policy, engine="osrm", base_url=engine.url, max_matrix=6
        ).matrix(src, dst, zone="urban")
        assert m.method == "osrm+estimate"
        estimate = EstimateTravel(policy).matrix_now(src, dst, "urban")
        assert np.allclose(m.minutes[-1], estimate[-1])
    # nothing listening: the estimate, said so
    dead = RoutingEngineTravel(policy, engine="osrm", base_url="http://127.0.0.1:9", timeout_s=0.5)
    m = await dead.matrix(src, dst, zone="urban")
    assert m.method == "estimate" and np.allclose(
        m.minutes, EstimateTravel(policy).matrix_now(src, dst, "urban")
    )


async def _bed_started(registry, org, on: date) -> dict:
    elder = await make_elder(registry)
    r = await registry.post(
        "/v1/beds",
        {
            "elder_id": elder["id"],
            "org_id": org["id"],
            "station_id": org["station"]["id"],
            "started_on": str(on),
        },
    )
    assert r.status_code == 201, r.text
    return {"bed": r.json(), "elder": elder, "org": org}


def three_past_days_of_one_month() -> list[date]:
    """Three consecutive days that are over, in one month, whatever today is: the last three
    of this month before today, or (on the 1st–3rd) the last three of the previous month —
    never more than a week back, inside the backdating limit of uploads."""
    today = clock.today()
    last = today - timedelta(days=1) if today.day > 3 else today.replace(day=1) - timedelta(days=1)
    return [last - timedelta(days=k) for k in (2, 1, 0)]


async def _delivered(
    dispatch, home, staff, day: date, minutes: int, items: list[str], done=None
) -> str:
    start = datetime.combine(day, time(9, 0), tzinfo=clock.SHANGHAI)
    r = await dispatch.post(
        "/v1/visits",
        {
            "bed_id": home["bed"]["id"],
            "staff_id": staff["id"],
            "planned_start": start.isoformat(),
            "planned_end": (start + timedelta(minutes=minutes)).isoformat(),
            "items": items or ["meal"],
        },
        role="org_admin",
        org=home["org"]["id"],
    )
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    here = {"lat": HOME[0], "lon": HOME[1]}
    await dispatch.post(
        f"/v1/visits/{vid}/check-in", {**here, "at": start.isoformat()}, **caregiver(staff)
    )
    r = await dispatch.post(
        f"/v1/visits/{vid}/check-out",
        {
            **here,
            "at": (start + timedelta(minutes=minutes)).isoformat(),
            "items_done": items if done is None else done,
        },
        **caregiver(staff),
    )
    assert r.status_code == 201, r.text
    return vid


async def test_compliance_of_a_bed_and_the_org_beds_short_of_the_rule(registry, dispatch):
    org = await make_org(registry)
    staff = await make_staff(registry, org)
    days = three_past_days_of_one_month()
    good = await _bed_started(registry, org, days[0])
    short = await _bed_started(registry, org, days[0])
    kinds = [["meal", "cleaning"], ["bathing"], ["meal", "companionship"]]
    for d, items in zip(days, kinds, strict=True):
        await _delivered(dispatch, good, staff, d, 65, items)
    other = await make_staff(registry, org)  # the same caregiver at the same time would overlap
    await _delivered(dispatch, short, other, days[0], 65, ["meal"])
    flagged = await _delivered(
        dispatch, short, other, days[1], 65, [], done=[]
    )  # no items: excluded
    month = {"month": f"{days[0]:%Y-%m}"}
    r = await dispatch.get(f"/v1/compliance/beds/{good['bed']['id']}", role="admin", params=month)
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["period_start"], c["period_end"]) == (str(days[0]), str(days[2]))
    assert c["days_in_period"] == 3 and c["days_with_minimum"] == 3
    assert c["daily_minimum_met"] and c["verified_visits"] == 3 and c["reasons"] == []
    assert c["compliant"] and c["daily_living_kinds"] == ["bathing", "cleaning", "meal"]
    r = await dispatch.get(f"/v1/compliance/beds/{short['bed']['id']}", role="admin", params=month)
    s = r.json()
    assert not s["compliant"] and not s["daily_minimum_met"]
    assert [x["visit_id"] for x in s["excluded"]] == [flagged]
    assert s["excluded"][0]["flags"] == ["no_items"]
    assert [x["code"] for x in s["reasons"]] == [
        "monthly_hours",
        "daily_minimum",
        "daily_living_kinds",
    ]
    assert s["reasons"][1]["message"] == "2 天的服务不足 60 分钟"
    r = await dispatch.client.get(
        f"/v1/compliance/beds/{short['bed']['id']}",
        params=month,
        headers={**dispatch.auth("admin"), "Accept-Language": "en"},
    )
    assert r.json()["reasons"][1]["message"] == "2 day(s) under 60 minutes"
    # the org's beds short of the rule, paged
    worse = await _bed_started(registry, org, days[0])
    who = {"role": "org_admin", "org": org["id"]}
    url = f"/v1/compliance/orgs/{org['id']}"
    whole = (await dispatch.get(url, params=month, **who)).json()
    assert whole["beds"] == 3 and whole["compliant"] == 1 and whole["next_cursor"] is None
    assert [b["bed_id"] for b in whole["items"]] == sorted(
        [short["bed"]["id"], worse["bed"]["id"]], key=uuid.UUID
    )
    first = (await dispatch.get(url, params={**month, "limit": 1}, **who)).json()
    rest = (
        await dispatch.get(url, params={**month, "limit": 1, "cursor": first["next_cursor"]}, **who)
    ).json()
    assert [b["bed_id"] for b in first["items"] + rest["items"]] == [
        b["bed_id"] for b in whole["items"]
    ]
    assert rest["next_cursor"] is None
    bad = await dispatch.get(
        f"/v1/compliance/beds/{good['bed']['id']}", role="admin", params={"month": "2026-13"}
    )
    assert bad.status_code == 422
    stranger = await make_org(registry)
    assert (
        await dispatch.get(
            f"/v1/compliance/beds/{good['bed']['id']}",
            role="org_admin",
            org=stranger["id"],
            params=month,
        )
    ).status_code == 404
    # caregivers follow their own visits, not their org's delivery
    for path in (f"/v1/compliance/beds/{good['bed']['id']}", url, f"/v1/kpis/orgs/{org['id']}"):
        assert (await dispatch.get(path, params=month, **caregiver(staff))).status_code == 403


async def test_plan_generates_visits_ahead_once_on_working_days(registry, dispatch, db):
    org = await make_org(registry)
    staff = await make_staff(registry, org)
    home = await _bed_started(registry, org, clock.today())
    body = {
        "bed_id": home["bed"]["id"],
        "staff_id": staff["id"],
        "rrule": "FREQ=DAILY",
        "working_days_only": True,
        "start_time": "09:30",
        "duration_minutes": 70,
        "items": ["助餐", "助洁", "助浴"],
    }
    r = await dispatch.post("/v1/plans", body, role="org_admin", org=org["id"])
    assert r.status_code == 201, r.text
    plan = r.json()
    horizon = dispatch_policy.load().horizon_days
    rows = await db.fetch(
        "SELECT planned_start FROM dispatch.visits WHERE plan_id = $1 ORDER BY planned_start",
        uuid.UUID(plan["id"]),
    )
    local_days = [r["planned_start"].astimezone(clock.SHANGHAI) for r in rows]
    assert plan["generated"] == len(rows) > 0
    from shared.calendar import is_working_day, load_exceptions

    async with dispatch.app.state.sessionmaker() as session:
        exceptions = await load_exceptions(
            session, clock.today(), clock.today() + timedelta(days=horizon)
        )
    expected = [
        clock.today() + timedelta(days=k)
        for k in range(horizon + 1)
        if is_working_day(clock.today() + timedelta(days=k), exceptions)
    ]
    assert [d.date() for d in local_days] == expected
    assert all((d.hour, d.minute) == (9, 30) for d in local_days)
    from services.dispatch.plans import generator

    async with dispatch.app.state.sessionmaker.begin() as session:
        assert await generator.generate_all(session=session) == 0  # nothing twice
    assert (
        await dispatch.post(
            "/v1/plans", {**body, "rrule": "FREQ=MINUTELY"}, role="org_admin", org=org["id"]
        )
    ).status_code == 422


async def test_the_plan_loop_extends_every_plan_in_one_batch(registry, dispatch, db):
    from services.dispatch.plans import generator

    org = await make_org(registry)
    staff = await make_staff(registry, org)
    plans = []
    for rule in ("FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO"):
        home = await _bed_started(registry, org, clock.today())
        r = await dispatch.post(
            "/v1/plans",
            {
                "bed_id": home["bed"]["id"],
                "staff_id": staff["id"],
                "rrule": rule,
                "start_time": "15:00",
                "duration_minutes": 60,
                "items": ["meal"],
            },
            role="org_admin",
            org=org["id"],
        )
        plans.append(uuid.UUID(r.json()["id"]))

    async def counts() -> list[int]:
        return [
            await db.fetchval("SELECT count(*) FROM dispatch.visits WHERE plan_id = $1", p)
            for p in plans
        ]

    before = await counts()
    # a week on: the loop extends both plans' horizons by seven days, in one batch
    async with dispatch.app.state.sessionmaker.begin() as session:
        made = await generator.generate_all(session=session, today=clock.today() + timedelta(7))
    after = await counts()
    assert [a - b for a, b in zip(after, before, strict=True)] == [7, 1]
    assert made >= 8
    until = await db.fetch("SELECT generated_until FROM dispatch.plans WHERE id = ANY($1)", plans)
    horizon = dispatch_policy.load().horizon_days
    assert {r["generated_until"] for r in until} == {clock.today() + timedelta(7 + horizon)}


async def test_assignment_vroom_and_greedy_skills_continuity_and_sick_call(registry, dispatch):
    org = await make_org(registry)
    aide1 = await make_staff(registry, org)
    aide2 = await make_staff(registry, org)
    nurse = await make_staff(registry, org, role="nurse")
    day = clock.today() + timedelta(days=1)
    visits = []
    for k in range(6):
        elder = await make_elder(registry, lat=HOME[0] + 0.003 * k, lon=HOME[1] + 0.002 * k)
        bed = await make_bed(registry, elder, org)
        start = datetime.combine(day, time(9 + k, 0), tzinfo=clock.SHANGHAI)
        items = ["injection"] if k == 5 else ["meal"]
        r = await dispatch.post(
            "/v1/visits",
            {
                "bed_id": bed["id"],
                "staff_id": aide1["id"] if k < 5 else None,
                "planned_start": start.isoformat(),
                "planned_end": (start + timedelta(minutes=45)).isoformat(),
                "items": items,
            },
            role="org_admin",
            org=org["id"],
        )
        assert r.status_code == 201, r.text
        visits.append(r.json())
    for solver_name in ("greedy", "vroom"):
        r = await dispatch.post(
            "/v1/routes/plan",
            {"day": str(day), "org_id": org["id"], "solver": solver_name, "apply": True},
            role="org_admin",
            org=org["id"],
        )
        assert r.status_code == 200, r.text
        plan = r.json()
        assert plan["result"]["solver"] == solver_name and plan["result"]["assigned"] == 6, plan
        assert plan["result"]["unassigned"] == [] and plan["baseline"]["solver"] == "greedy"
        by_staff = {
            route["staff_id"]: [s["visit_id"] for s in route["stops"]] for route in plan["routes"]
        }
        assert visits[5]["id"] in by_staff[nurse["id"]]  # the injection needs the nurse
        if solver_name == "greedy":
            # continuity of care: the usual caregiver keeps its five visits
            assert by_staff[aide1["id"]] == [v["id"] for v in visits[:5]]
        assert (
            plan["result"]["travel_minutes"] <= plan["baseline"]["travel_minutes"] + 1e-6
            or solver_name == "greedy"
        )
    # whoever holds the first visit has already begun it (the handset checked in early)
    holder = (await dispatch.get(f"/v1/visits/{visits[0]['id']}", role="admin")).json()
    staff_by_id = {x["id"]: x for x in (aide1, aide2, nurse)}
    r = await dispatch.post(
        f"/v1/visits/{visits[0]['id']}/check-in",
        {"lat": HOME[0], "lon": HOME[1], "at": datetime.now(UTC).isoformat()},
        **caregiver(staff_by_id[holder["staff_id"]]),
    )
    assert r.status_code == 201, r.text
    # sick call: aide1 and the nurse are out; the injection cannot be given by aide2
    r = await dispatch.post(
        "/v1/routes/plan",
        {
            "day": str(day),
            "org_id": org["id"],
            "solver": "vroom",
            "unavailable_staff": [aide1["id"], nurse["id"]],
        },
        role="org_admin",
        org=org["id"],
    )
    plan = r.json()
    assert plan["kept"] == 1  # begun: not moved
    assert [u["visit_id"] for u in plan["result"]["unassigned"]] == [visits[5]["id"]]
    assert plan["result"]["unassigned"][0]["reason"] == "no_qualified_staff"
    assert {s["visit_id"] for route in plan["routes"] for s in route["stops"]} == {
        v["id"] for v in visits[1:5]
    }
    begun = (await dispatch.get(f"/v1/visits/{visits[0]['id']}", role="admin")).json()
    assert begun["staff_id"] == holder["staff_id"] and begun["status"] == "checked_in"
    tasks = (
        await dispatch.get(
            f"/v1/staff/{aide2['id']}/tasks", **caregiver(aide2), params={"day": str(day)}
        )
    ).json()
    mine = [v["id"] for v in visits[1:5]]
    if holder["staff_id"] == aide2["id"]:  # a visit begun stays in its caregiver's feed
        mine = [visits[0]["id"], *mine]
    assert sorted(v["id"] for v in tasks["visits"]) == sorted(mine)
    assert (
        await dispatch.post(
            "/v1/routes/plan", {"day": str(day), "org_id": org["id"]}, **caregiver(aide2)
        )
    ).status_code == 403


async def test_bulk_coverage_pages_by_bed_id_and_agrees_with_the_single_check(registry, dispatch):
    """The packed columnar read gives, bed for bed, what ``/coverage/check`` gives for the
    nearest station; pages walk every bed outside once, in bed-id order."""
    org = await make_org(registry)
    far = await add_station(registry, org, HOME[0] + 0.05, HOME[1])
    beds = {}
    for k in range(5):  # both zones; all beyond 15 min of either station unless rural
        elder = await make_elder(
            registry, lat=HOME[0] + 0.1 + 0.01 * k, lon=HOME[1], zone="rural" if k % 2 else "urban"
        )
        beds[(await make_bed(registry, elder, org))["id"]] = elder
    near = await make_elder(registry, lat=HOME[0] + 0.001, lon=HOME[1])
    beds[(await make_bed(registry, near, org))["id"]] = near
    who = {"role": "org_admin", "org": org["id"]}
    r = await dispatch.post(
        "/v1/coverage/bulk", {"org_id": org["id"], "include_within": True}, **who
    )
    assert r.status_code == 200, r.text
    whole = r.json()
    assert whole["beds"] == 6 and whole["next_cursor"] is None
    assert [i["bed_id"] for i in whole["items"]] == sorted(beds, key=uuid.UUID)
    for item in whole["items"]:
        one = (
            await dispatch.post(
                "/v1/coverage/check",
                {"station_id": item["nearest_station_id"], "elder_id": item["elder_id"]},
                **who,
            )
        ).json()
        assert item["nearest_station_id"] in (org["station"]["id"], far["id"])
        assert item["travel_minutes"] == one["travel_minutes"]
        assert item["within_radius"] == one["within_radius"]
        assert item["limit_minutes"] == one["limit_minutes"]
        assert item["elder_id"] == beds[item["bed_id"]]["id"]
    outside = [i["bed_id"] for i in whole["items"] if not i["within_radius"]]
    assert whole["outside"] == len(outside) >= 2
    seen, cursor = [], None
    while True:
        r = await dispatch.client.post(
            "/v1/coverage/bulk",
            json={"org_id": org["id"]},
            params={"limit": 1, **({"cursor": cursor} if cursor else {})},
            headers=dispatch.auth(**who),
        )
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) == 1 and page["outside"] == len(outside)
        seen += [i["bed_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == outside  # each once, in order
    r = await dispatch.client.post(
        "/v1/coverage/bulk",
        json={"org_id": org["id"]},
        params={"cursor": "AAAAAAAAAAA"},  # 8 bytes: a sequence cursor, not a bed id
        headers=dispatch.auth(**who),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"
    csv_lines = (
        await dispatch.get("/v1/coverage/bulk.csv", params={"org_id": org["id"]}, **who)
    ).text.splitlines()
    assert len(csv_lines) == 7
    for line, item in zip(csv_lines[1:], whole["items"], strict=True):
        cells = line.split(",")
        assert cells[0] == item["bed_id"] and cells[4] == item["nearest_station_id"]
        assert float(cells[5]) == item["travel_minutes"]
        assert cells[7] == ("true" if item["within_radius"] else "false")


async def test_plan_mode_re_checks_the_day_as_it_stands(registry, dispatch, db):
    org = await make_org(registry)
    aide = await make_staff(registry, org)
    day = clock.today() + timedelta(days=2)
    ids = []
    for k in range(3):
        elder = await make_elder(registry, lat=HOME[0] + 0.002 * k, lon=HOME[1])
        bed = await make_bed(registry, elder, org)
        start = datetime.combine(day, time(9 + 2 * k, 0), tzinfo=clock.SHANGHAI)
        r = await dispatch.post(
            "/v1/visits",
            {
                "bed_id": bed["id"],
                "staff_id": aide["id"],
                "planned_start": start.isoformat(),
                "planned_end": (start + timedelta(minutes=45)).isoformat(),
                "items": ["meal"],
            },
            role="org_admin",
            org=org["id"],
        )
        ids.append(r.json()["id"])
    orphan = await make_bed(registry, await make_elder(registry), org)
    start = datetime.combine(day, time(15, 0), tzinfo=clock.SHANGHAI)
    r = await dispatch.post(
        "/v1/visits",
        {
            "bed_id": orphan["id"],
            "planned_start": start.isoformat(),
            "planned_end": (start + timedelta(minutes=30)).isoformat(),
            "items": ["meal"],
        },
        role="org_admin",
        org=org["id"],
    )
    orphan_visit = r.json()["id"]
    who = {"role": "org_admin", "org": org["id"]}
    plan = (
        await dispatch.post("/v1/routes/plan", {"day": str(day), "org_id": org["id"]}, **who)
    ).json()
    assert plan["result"]["assigned"] == 4
    await db.execute(  # a desk moves the afternoon visit to nobody
        "UPDATE dispatch.visits SET staff_id = NULL, route_seq = NULL WHERE id = $1",
        uuid.UUID(orphan_visit),
    )
    params = {"day": str(day), "org_id": org["id"]}
    checked = (await dispatch.get("/v1/routes/check", params=params, **who)).json()
    assert checked["violations"] == 0
    assert checked["unassigned"] == [{"visit_id": orphan_visit, "reason": "no_caregiver"}]
    route = next(x for x in checked["routes"] if x["staff_id"] == aide["id"])
    planned = {
        s["visit_id"]: s["eta_minutes"]
        for x in plan["routes"]
        for s in x["stops"]
        if s["visit_id"] != orphan_visit
    }
    assert {s["visit_id"]: s["eta_minutes"] for s in route["stops"]} == pytest.approx(
        planned, abs=1.0
    )
    # someone reorders the route by hand: last visit first — plan mode says what breaks
    await db.execute("UPDATE dispatch.visits SET route_seq = -1 WHERE id = $1", uuid.UUID(ids[2]))
    checked = (await dispatch.get("/v1/routes/check", params=params, **who)).json()
    route = next(x for x in checked["routes"] if x["staff_id"] == aide["id"])
    assert [s["visit_id"] for s in route["stops"]] == [ids[2], ids[0], ids[1]]  # not moved
    late = [s for s in route["stops"] if any(v["code"] == "delay" for v in s["violations"])]
    assert [s["visit_id"] for s in late] == [ids[0]] and checked["violations"] >= 1
    assert late[0]["violations"][0]["message"] == "晚于服务时间窗"
    r = await dispatch.client.get(
        "/v1/routes/check",
        params=params,
        headers={**dispatch.auth(**who), "Accept-Language": "en"},
    )
    assert "starts after its time window" in r.text
    assert (
        await dispatch.get("/v1/routes/check", params=params, **caregiver(aide))
    ).status_code == 403
