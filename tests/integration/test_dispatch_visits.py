"""Visits against real PostgreSQL: items from the catalogue, qualifications, EVV check-in and
check-out, anomaly flags, supervisor review, VISIT mode outbox, verified visits, scoping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import inspect as sa_inspect

from shared import clock
from shared.visits_readmodel import verified_visits
from tests.factories import credit_code
from tests.integration.builders import make_org
from tests.integration.dispatch_helpers import caregiver, make_bed_home, make_staff, new_visit

HOME = (24.7236, 118.1520)  # tests.factories.elder_body()


@pytest.fixture
async def db(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


def when(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


async def test_items_by_usual_name_unknown_refused_with_the_valid_list(registry, dispatch):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    visit = await new_visit(dispatch, home, staff, items=("助餐", "助洁", "meal"))
    assert visit["items"] == ["meal", "cleaning"]
    start = datetime.now(UTC)
    r = await dispatch.post(
        "/v1/visits",
        {
            "bed_id": home["bed"]["id"],
            "staff_id": staff["id"],
            "planned_start": start.isoformat(),
            "planned_end": (start + timedelta(hours=1)).isoformat(),
            "items": ["助餐", "飞行"],
        },
        role="org_admin",
        org=home["org"]["id"],
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["errors"][0]["field"] == "items" and "飞行" in body["errors"][0]["message"]
    assert {"code": "meal", "name": "助餐", "category": "daily_living"} in body["valid_items"]


async def test_medical_items_need_qualified_staff_at_a_licensed_org(registry, dispatch):
    home = await make_bed_home(registry)  # make_org gives a medical licence
    aide = await make_staff(registry, home["org"], role="caregiver")
    nurse = await make_staff(registry, home["org"], role="nurse")
    start = datetime.now(UTC)
    body = {
        "bed_id": home["bed"]["id"],
        "planned_start": start.isoformat(),
        "planned_end": (start + timedelta(hours=1)).isoformat(),
        "items": ["注射"],
    }
    r = await dispatch.post(
        "/v1/visits", {**body, "staff_id": aide["id"]}, role="org_admin", org=home["org"]["id"]
    )
    assert r.status_code == 422 and "doctor, nurse" in r.json()["errors"][0]["message"], r.text
    r = await dispatch.post(
        "/v1/visits", {**body, "staff_id": nurse["id"]}, role="org_admin", org=home["org"]["id"]
    )
    assert r.status_code == 201, r.text
    # an org without a licence may not offer it even with a nurse
    r = await registry.post(
        "/v1/orgs", {"name": "无证机构", "credit_code": credit_code(), "region": "350212"}
    )
    org = r.json()
    r = await registry.post(
        f"/v1/orgs/{org['id']}/stations",
        {"name": "站", "lat": 24.73, "lon": 118.15, "zone": "urban"},
    )
    org["station"] = r.json()
    home2 = await make_bed_home(registry, org)
    nurse2 = await make_staff(registry, org, role="nurse")
    r = await dispatch.post(
        "/v1/visits",
        {**body, "bed_id": home2["bed"]["id"], "staff_id": nurse2["id"]},
        role="org_admin",
        org=org["id"],
    )
    assert r.status_code == 422, r.text
    assert "医疗机构执业许可证" in r.json()["errors"][0]["message"]


async def test_check_in_at_home_then_repeat_replays_and_conflicting_repeat_is_409(
    registry, dispatch, db
):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    visit = await new_visit(dispatch, home, staff, start_ago_min=30)
    body = {"lat": HOME[0] + 0.0005, "lon": HOME[1], "at": when(25)}
    url = f"/v1/visits/{visit['id']}/check-in"
    r = await dispatch.post(url, body, **caregiver(staff))
    assert r.status_code == 201, r.text
    first = r.json()
    assert (
        first["status"] == "checked_in" and first["flags"] == [] and 40 < first["distance_m"] < 70
    )
    assert first["late"] is True  # uploaded 25 minutes after the handset time
    again = await dispatch.post(url, body, **caregiver(staff))  # no Idempotency-Key: natural
    assert again.status_code == 200 and again.json() == first
    other = await dispatch.post(url, {**body, "at": when(20)}, **caregiver(staff))
    assert other.status_code == 409
    row = await db.fetchrow(
        "SELECT method, path, body FROM dispatch.outbox WHERE idempotency_key = $1",
        f"visit-mode:{visit['id']}:in",
    )
    assert row["method"] == "PUT" and row["path"] == f"/v1/elders/{home['elder']['id']}/visit-mode"
    assert '"active": true' in row["body"]


async def test_only_the_assigned_caregiver_checks_in(registry, dispatch):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    other = await make_staff(registry, home["org"])
    visit = await new_visit(dispatch, home, staff, start_ago_min=10)
    r = await dispatch.post(
        f"/v1/visits/{visit['id']}/check-in",
        {"lat": HOME[0], "lon": HOME[1], "at": when(1)},
        **caregiver(other),
    )
    assert r.status_code == 404  # another caregiver does not even see it


async def test_far_check_in_is_flagged_and_alternate_location_needs_a_reason(registry, dispatch):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    v1 = await new_visit(dispatch, home, staff, start_ago_min=300)
    v2 = await new_visit(dispatch, home, staff, start_ago_min=200)
    far = {"lat": HOME[0] + 0.01, "lon": HOME[1]}  # ~1.1 km
    r = await dispatch.post(
        f"/v1/visits/{v1['id']}/check-in", {**far, "at": when(299)}, **caregiver(staff)
    )
    assert r.status_code == 201 and r.json()["flags"] == ["too_far"], r.text
    await dispatch.post(
        f"/v1/visits/{v1['id']}/check-out",
        {**far, "at": when(239), "items_done": ["meal", "cleaning"]},
        **caregiver(staff),
    )
    r = await dispatch.post(
        f"/v1/visits/{v2['id']}/check-in",
        {**far, "at": when(199), "alternate_reason": "陪同就医"},
        **caregiver(staff),
    )
    assert r.json()["flags"] == ["alternate_location"], r.text


async def test_anomalies_at_check_out_and_review_makes_the_visit_count(registry, dispatch, db):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    visit = await new_visit(dispatch, home, staff, start_ago_min=200, minutes=60)
    here = {"lat": HOME[0], "lon": HOME[1]}
    await dispatch.post(
        f"/v1/visits/{visit['id']}/check-in", {**here, "at": when(200)}, **caregiver(staff)
    )
    r = await dispatch.post(
        f"/v1/visits/{visit['id']}/check-out",
        {**here, "at": when(190), "items_done": []},
        **caregiver(staff),
    )
    assert r.status_code == 201, r.text
    assert sorted(r.json()["flags"]) == ["no_items", "too_short"]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM dispatch.verified_visits WHERE visit_id = $1",
            uuid.UUID(visit["id"]),
        )
        == 0
    )
    # a caregiver may not clear its own flags
    review = {"decision": "clear", "reason_code": "elder_refused", "note": "老人当天拒绝服务"}
    r = await dispatch.post(
        f"/v1/visits/{visit['id']}/flags/no_items/review", review, **caregiver(staff)
    )
    assert r.status_code == 403
    for code in ("no_items", "too_short"):
        r = await dispatch.post(
            f"/v1/visits/{visit['id']}/flags/{code}/review",
            review,
            role="org_admin",
            org=home["org"]["id"],
        )
        assert r.status_code == 200 and r.json()["status"] == "cleared", r.text
    row = await db.fetchrow(
        "SELECT * FROM dispatch.verified_visits WHERE visit_id = $1", uuid.UUID(visit["id"])
    )
    assert (
        row["minutes"] == 10
        and row["staff_id"] == uuid.UUID(staff["id"])
        and row["verified_at"] is not None
    )
    audited = await db.fetchval(
        "SELECT count(*) FROM common.audit_log "
        "WHERE resource_id = $1 AND action = 'visit_flag.clear'",
        uuid.UUID(visit["id"]),
    )
    assert audited == 2


async def test_out_before_in_and_impossible_travel_and_overlap(registry, dispatch):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    here = {"lat": HOME[0], "lon": HOME[1]}
    a = await new_visit(dispatch, home, staff, start_ago_min=400)
    await dispatch.post(
        f"/v1/visits/{a['id']}/check-in", {**here, "at": when(400)}, **caregiver(staff)
    )
    r = await dispatch.post(
        f"/v1/visits/{a['id']}/check-out",
        {**here, "at": when(410), "items_done": ["meal"]},
        **caregiver(staff),
    )
    assert "out_before_in" in r.json()["flags"]
    # 30 km away five minutes after the last check-out
    b = await new_visit(dispatch, home, staff, start_ago_min=300)
    c = await new_visit(dispatch, home, staff, start_ago_min=300)
    await dispatch.post(
        f"/v1/visits/{b['id']}/check-in", {**here, "at": when(300)}, **caregiver(staff)
    )
    await dispatch.post(
        f"/v1/visits/{b['id']}/check-out",
        {**here, "at": when(250), "items_done": ["meal"]},
        **caregiver(staff),
    )
    r = await dispatch.post(
        f"/v1/visits/{c['id']}/check-in",
        {"lat": HOME[0] + 0.27, "lon": HOME[1], "at": when(245)},
        **caregiver(staff),
    )
    assert "impossible_travel" in r.json()["flags"], r.text
    # two visits at once
    d = await new_visit(dispatch, home, staff, start_ago_min=100)
    e = await new_visit(dispatch, home, staff, start_ago_min=100)
    await dispatch.post(
        f"/v1/visits/{d['id']}/check-in", {**here, "at": when(100)}, **caregiver(staff)
    )
    r = await dispatch.post(
        f"/v1/visits/{e['id']}/check-in", {**here, "at": when(90)}, **caregiver(staff)
    )
    assert "overlap" in r.json()["flags"], r.text


async def test_verified_visits_view_has_exactly_the_published_columns(database_url, dispatch):
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT column_name, data_type, udt_name FROM information_schema.columns "
            "WHERE table_schema = 'dispatch' AND table_name = 'verified_visits' "
            "ORDER BY ordinal_position"
        )
    finally:
        await conn.close()
    published = [c.name for c in verified_visits.columns]
    assert [r["column_name"] for r in rows] == published
    types = {r["column_name"]: (r["data_type"], r["udt_name"]) for r in rows}
    expected = {
        "visit_id": "uuid",
        "bed_id": "uuid",
        "elder_id": "uuid",
        "org_id": "uuid",
        "staff_id": "uuid",
        "service_day": "date",
        "started_at": "timestamptz",
        "ended_at": "timestamptz",
        "minutes": "int4",
        "item_codes": "_varchar",
        "verified_at": "timestamptz",
    }
    assert {k: v[1] for k, v in types.items()} == expected
    assert sa_inspect(verified_visits).c.visit_id.primary_key


async def test_tasks_scoping_caregiver_sees_only_its_own_and_an_org_only_its_beds(
    registry, dispatch
):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    other = await make_staff(registry, home["org"])
    visit = await new_visit(dispatch, home, staff, start_ago_min=5)
    r = await dispatch.get(f"/v1/staff/{staff['id']}/tasks", **caregiver(staff))
    assert r.status_code == 200 and [v["id"] for v in r.json()["visits"]] == [visit["id"]]
    assert (
        await dispatch.get(f"/v1/staff/{staff['id']}/tasks", **caregiver(other))
    ).status_code == 404
    other_org = await make_org(registry)
    assert (
        await dispatch.get(f"/v1/staff/{staff['id']}/tasks", role="org_admin", org=other_org["id"])
    ).status_code == 404
    assert (
        await dispatch.get(f"/v1/visits/{visit['id']}", role="org_admin", org=other_org["id"])
    ).status_code == 404
    assert (
        await dispatch.get(f"/v1/visits/{visit['id']}", role="org_admin", org=home["org"]["id"])
    ).status_code == 200
    assert (  # family members see nothing operational
        await dispatch.get(f"/v1/visits/{visit['id']}", role="family", elder=home["elder"]["id"])
    ).status_code == 403
    assert (
        await dispatch.get(f"/v1/visits/{visit['id']}", role="community", region="350203")
    ).status_code == 404
    assert (
        await dispatch.get(f"/v1/visits/{visit['id']}", role="community", region="350212")
    ).status_code == 200
    # an org cannot plan visits on another org's bed
    start = datetime.now(UTC)
    r = await dispatch.post(
        "/v1/visits",
        {
            "bed_id": home["bed"]["id"],
            "planned_start": start.isoformat(),
            "planned_end": (start + timedelta(hours=1)).isoformat(),
            "items": ["meal"],
        },
        role="org_admin",
        org=other_org["id"],
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "bed_id"
    lst = await dispatch.get(
        "/v1/visits", role="org_admin", org=other_org["id"], params={"bed_id": home["bed"]["id"]}
    )
    assert lst.json()["items"] == []


async def test_handset_time_without_offset_is_422_and_future_is_refused(registry, dispatch):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    visit = await new_visit(dispatch, home, staff, start_ago_min=5)
    url = f"/v1/visits/{visit['id']}/check-in"
    r = await dispatch.post(
        url, {"lat": HOME[0], "lon": HOME[1], "at": "2026-01-01T10:00:00"}, **caregiver(staff)
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "at"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await dispatch.post(url, {"lat": HOME[0], "lon": HOME[1], "at": future}, **caregiver(staff))
    assert r.status_code == 422


async def test_ad_hoc_visit_client_ref_finds_the_first_one_again(registry, dispatch):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    start = datetime.now(UTC)
    body = {
        "bed_id": home["bed"]["id"],
        "planned_start": start.isoformat(),
        "planned_end": (start + timedelta(hours=1)).isoformat(),
        "items": ["meal"],
        "client_ref": "handset-1-42",
    }
    first = await dispatch.post("/v1/visits", body, **caregiver(staff))
    again = await dispatch.post("/v1/visits", body, **caregiver(staff))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and first.json()["staff_id"] == staff["id"]


async def test_a_handset_offline_for_days_uploads_once_and_its_retries_replay(
    registry, dispatch, db
):
    """Three days offline: the ad-hoc visit, its check-in and its check-out arrive today (late,
    still counted for the day they happened); the handset, not having heard back, sends the
    whole batch again (its Idempotency-Keys long expired): nothing is counted twice."""
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    start = datetime.now(UTC) - timedelta(days=3)
    here = {"lat": HOME[0], "lon": HOME[1]}
    create = {
        "bed_id": home["bed"]["id"],
        "planned_start": start.isoformat(),
        "planned_end": (start + timedelta(hours=1)).isoformat(),
        "items": ["meal", "cleaning"],
        "client_ref": f"hs-{uuid.uuid4().hex[:6]}-1001",
    }
    cin = {**here, "at": (start + timedelta(minutes=5)).isoformat()}
    cout = {
        **here,
        "at": (start + timedelta(minutes=65)).isoformat(),
        "items_done": ["助餐", "助洁"],
        "note": "离线补传",
    }
    me = caregiver(staff)
    first = await dispatch.post("/v1/visits", create, **me)
    assert first.status_code == 201, first.text
    vid = first.json()["id"]
    r_in = await dispatch.post(f"/v1/visits/{vid}/check-in", cin, **me)
    r_out = await dispatch.post(f"/v1/visits/{vid}/check-out", cout, **me)
    assert (r_in.status_code, r_out.status_code) == (201, 201), (r_in.text, r_out.text)
    out = r_out.json()
    assert out == {
        "visit_id": vid,
        "status": "checked_out",
        "distance_m": 0.0,
        "flags": [],
        "late": True,
    }
    for _ in range(2):  # the batch again, twice
        again = await dispatch.post("/v1/visits", create, **me)
        assert again.status_code == 200 and again.json()["id"] == vid
        r = await dispatch.post(f"/v1/visits/{vid}/check-in", cin, **me)
        assert r.status_code == 200 and r.json() == {**r_in.json(), "status": "checked_out"}
        r = await dispatch.post(f"/v1/visits/{vid}/check-out", cout, **me)
        assert r.status_code == 200 and r.json() == out
    # a different check-out for the same visit is a conflict, not a second visit
    r = await dispatch.post(f"/v1/visits/{vid}/check-out", {**cout, "lat": HOME[0] + 0.01}, **me)
    assert r.status_code == 409
    key = uuid.UUID(vid)
    rows = await db.fetch(
        "SELECT service_day, minutes, item_codes FROM dispatch.verified_visits WHERE visit_id = $1",
        key,
    )
    assert len(rows) == 1 and rows[0]["minutes"] == 60
    assert (
        rows[0]["service_day"] == (start + timedelta(minutes=5)).astimezone(clock.SHANGHAI).date()
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM dispatch.visits WHERE client_ref = $1", create["client_ref"]
        )
        == 1
    )
    assert (
        await db.fetchval("SELECT count(*) FROM dispatch.visit_flags WHERE visit_id = $1", key) == 0
    )
    # the visit was over long before the upload: telemetry's VISIT mode is not switched now
    assert (
        await db.fetchval(
            "SELECT count(*) FROM dispatch.outbox WHERE idempotency_key LIKE $1",
            f"visit-mode:{vid}:%",
        )
        == 0
    )
    # beyond the policy's backdating limit an upload is refused, with the field named
    old = await new_visit(dispatch, home, staff, start_ago_min=16 * 24 * 60)
    r = await dispatch.post(
        f"/v1/visits/{old['id']}/check-in",
        {**here, "at": (datetime.now(UTC) - timedelta(days=15)).isoformat()},
        **me,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "at"


async def test_visit_mode_switches_for_live_visits_only_and_stays_on_while_someone_is_in(
    registry, dispatch, db
):
    home = await make_bed_home(registry)
    a, b = await make_staff(registry, home["org"]), await make_staff(registry, home["org"])
    here = {"lat": HOME[0], "lon": HOME[1]}
    va = await new_visit(dispatch, home, a, start_ago_min=20)
    vb = await new_visit(dispatch, home, b, start_ago_min=15)

    async def keys(visit) -> list[str]:
        return [
            r["idempotency_key"]
            for r in await db.fetch(
                "SELECT idempotency_key FROM dispatch.outbox WHERE idempotency_key LIKE $1 "
                "ORDER BY id",
                f"visit-mode:{visit['id']}:%",
            )
        ]

    await dispatch.post(f"/v1/visits/{va['id']}/check-in", {**here, "at": when(18)}, **caregiver(a))
    await dispatch.post(f"/v1/visits/{vb['id']}/check-in", {**here, "at": when(14)}, **caregiver(b))
    assert await keys(va) == [f"visit-mode:{va['id']}:in"]
    assert await keys(vb) == [f"visit-mode:{vb['id']}:in"]
    out = {**here, "items_done": ["meal"]}
    r = await dispatch.post(
        f"/v1/visits/{va['id']}/check-out", {**out, "at": when(2)}, **caregiver(a)
    )
    assert r.status_code == 201, r.text
    assert await keys(va) == [f"visit-mode:{va['id']}:in"]  # b is still in the home
    r = await dispatch.post(
        f"/v1/visits/{vb['id']}/check-out", {**out, "at": when(1)}, **caregiver(b)
    )
    assert r.status_code == 201, r.text
    assert await keys(vb) == [f"visit-mode:{vb['id']}:in", f"visit-mode:{vb['id']}:out"]


async def test_check_in_scope_is_the_caller_s_not_the_first_caller_s(registry, dispatch):
    """The facts statement is built once per shape of principal; every caller's own scope
    values must reach it."""
    home = await make_bed_home(registry)
    other_home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    visit = await new_visit(dispatch, home, staff, start_ago_min=10)
    url = f"/v1/visits/{visit['id']}/check-in"
    body = {"lat": HOME[0], "lon": HOME[1], "at": when(1)}
    for claims in (  # each of these shapes has been built by an earlier caller
        {"role": "org_admin", "org": other_home["org"]["id"]},
        {"role": "admin", "region": "350203"},
        caregiver(await make_staff(registry, home["org"])),
    ):
        assert (await dispatch.post(url, body, **claims)).status_code == 404, claims
    r = await dispatch.post(url, body, role="admin", region="350212")
    assert r.status_code == 201, r.text
