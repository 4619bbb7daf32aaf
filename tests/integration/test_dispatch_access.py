"""Who sees what in dispatch, role by role, over every kind of read (DESIGN: a caregiver sees
only its own tasks; an org only its beds; family members nothing operational), and the
core requests of DESIGN.md sent with exactly the fields it names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared import clock
from tests.integration.builders import make_org
from tests.integration.dispatch_helpers import caregiver, make_bed_home, make_staff, new_visit

HOME = (24.7236, 118.1520)


async def test_the_scoping_matrix(registry, dispatch):
    home = await make_bed_home(registry)
    org = home["org"]
    a, b = await make_staff(registry, org), await make_staff(registry, org)
    va = await new_visit(dispatch, home, a, start_ago_min=30)
    vb = await new_visit(dispatch, home, b, start_ago_min=30)
    plan = (
        await dispatch.post(
            "/v1/plans",
            {
                "bed_id": home["bed"]["id"],
                "staff_id": b["id"],
                "rrule": "FREQ=WEEKLY;BYDAY=SA",
                "start_time": "10:00",
                "duration_minutes": 60,
                "items": ["meal"],
            },
            role="org_admin",
            org=org["id"],
        )
    ).json()
    d = (
        await dispatch.post(
            "/v1/dispatches",
            {
                "alert_id": str(uuid.uuid4()),
                "elder_id": home["elder"]["id"],
                "kind": "emergency",
                "raised_at": datetime.now(UTC).isoformat(),
            },
            role="service",
        )
    ).json()
    holder = d["staff_id"]
    other_cg = b if holder == a["id"] else a
    month = {"month": f"{clock.today():%Y-%m}"}
    day = {"day": str(clock.today()), "org_id": org["id"]}

    reads = {
        "visits": ("/v1/visits", None),
        "visit": (f"/v1/visits/{va['id']}", None),
        "dispatches": ("/v1/dispatches", None),
        "dispatch": (f"/v1/dispatches/{d['id']}", None),
        "plans": ("/v1/plans", None),
        "tasks": (f"/v1/staff/{a['id']}/tasks", None),
        "compliance": (f"/v1/compliance/beds/{home['bed']['id']}", month),
        "org compliance": (f"/v1/compliance/orgs/{org['id']}", month),
        "kpis": (f"/v1/kpis/orgs/{org['id']}", month),
        "route check": ("/v1/routes/check", day),
        "settings": (f"/v1/orgs/{org['id']}/dispatch-settings", None),
    }

    async def status(name: str, **claims) -> int:
        path, params = reads[name]
        return (await dispatch.get(path, params=params, **claims)).status_code

    # family members: nothing operational, whatever their elder
    family = {"role": "family", "elder": home["elder"]["id"]}
    for name in reads:
        assert await status(name, **family) == 403, name
    r = await dispatch.post("/v1/coverage/bulk", {"org_id": org["id"]}, **family)
    assert r.status_code == 403

    # a caregiver: its own visits, tasks, plans and dispatches only
    me = caregiver(a)
    assert await status("visit", **me) == 200 and await status("tasks", **me) == 200
    listed = (await dispatch.get("/v1/visits", **me)).json()["items"]
    assert [v["id"] for v in listed] == [va["id"]]
    assert (await dispatch.get(f"/v1/visits/{vb['id']}", **me)).status_code == 404
    assert (await dispatch.get(f"/v1/staff/{b['id']}/tasks", **me)).status_code == 404
    assert (await dispatch.get("/v1/plans", **me)).json()["items"] == []
    mine = (await dispatch.get("/v1/plans", **caregiver(b))).json()["items"]
    assert [p["id"] for p in mine] == [plan["id"]]
    not_offered = caregiver(other_cg)
    assert (await dispatch.get(f"/v1/dispatches/{d['id']}", **not_offered)).status_code == 404
    assert (await dispatch.get("/v1/dispatches", **not_offered)).json()["items"] == []
    for name in ("compliance", "org compliance", "kpis", "route check"):
        assert await status(name, **me) == 403, name

    # another org: none of it
    stranger = {"role": "org_admin", "org": (await make_org(registry))["id"]}
    for name in ("visit", "dispatch", "tasks", "compliance", "org compliance", "kpis"):
        assert await status(name, **stranger) == 404, name
    for name in ("visits", "dispatches", "plans"):
        path, _ = reads[name]
        assert (await dispatch.get(path, **stranger)).json()["items"] == [], name
    bulk = (await dispatch.post("/v1/coverage/bulk", {"include_within": True}, **stranger)).json()
    assert bulk["beds"] == 0 and bulk["items"] == []

    # the org itself, and the district officers of its region (not another region's)
    own = {"role": "org_admin", "org": org["id"]}
    for claims in (own, {"role": "community", "region": "350212"}):
        for name in ("visit", "dispatch", "compliance", "org compliance", "kpis"):
            assert await status(name, **claims) == 200, (claims, name)
    elsewhere = {"role": "community", "region": "350203"}
    for name in ("visit", "dispatch", "compliance"):
        assert await status(name, **elsewhere) == 404, name


async def test_design_requests_with_exactly_the_named_fields(registry, dispatch):
    """DESIGN.md's dispatch requests, field for field, as a new client sends them."""
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    start = datetime.now(UTC) - timedelta(minutes=70)
    r = await dispatch.post(
        "/v1/visits",
        {
            "bed_id": home["bed"]["id"],
            "staff_id": staff["id"],
            "planned_start": start.isoformat(),
            "planned_end": (start + timedelta(hours=1)).isoformat(),
            "items": ["助餐", "助洁", "助浴"],
        },
        role="org_admin",
        org=home["org"]["id"],
    )
    assert r.status_code == 201, r.text
    visit = r.json()
    uuid.UUID(visit["id"])
    here = {"lat": HOME[0], "lon": HOME[1]}
    r = await dispatch.post(
        f"/v1/visits/{visit['id']}/check-in",
        {**here, "at": start.isoformat()},
        **caregiver(staff),
    )
    assert r.status_code == 201, r.text
    assert set(r.json()) >= {"visit_id", "status", "distance_m", "flags"}
    r = await dispatch.post(
        f"/v1/visits/{visit['id']}/check-out",
        {
            **here,
            "at": (start + timedelta(hours=1)).isoformat(),
            "items_done": ["助餐", "助洁", "助浴"],
            "note": "老人状态良好",
        },
        **caregiver(staff),
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "checked_out" and r.json()["flags"] == []
    r = await dispatch.post(
        "/v1/coverage/check",
        {"station_id": home["org"]["station"]["id"], "elder_id": home["elder"]["id"]},
        role="org_admin",
        org=home["org"]["id"],
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) >= {"within_radius", "travel_minutes", "limit_minutes", "method"}
    alert = str(uuid.uuid4())
    r = await dispatch.post(
        "/v1/dispatches",
        {
            "alert_id": alert,
            "elder_id": home["elder"]["id"],
            "kind": "fall",
            "raised_at": datetime.now(UTC).isoformat(),
        },
        role="service",
    )
    assert r.status_code == 201, r.text
    uuid.UUID(r.json()["id"])
    page = (await dispatch.get("/v1/dispatches", params={"alert_id": alert})).json()
    assert set(page) == {"items", "next_cursor"}
    (item,) = page["items"]
    assert set(item) >= {"id", "alert_id", "status", "staff_id", "offered_at", "accepted_at"}
    r = await dispatch.post(f"/v1/dispatches/{item['id']}/accept", **caregiver(staff))
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    month = f"{start.astimezone(clock.SHANGHAI):%Y-%m}"
    r = await dispatch.get(f"/v1/compliance/beds/{home['bed']['id']}", params={"month": month})
    assert r.status_code == 200, r.text
    r = await dispatch.get("/v1/catalogue")
    assert set(r.json()) == {"items", "next_cursor"} and r.json()["items"]
