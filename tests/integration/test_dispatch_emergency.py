"""Emergency dispatch against real PostgreSQL: the hand-off, candidates, the chain with its
timers, accept/decline, arrival by check-in, resolution, cancellation, KPIs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.dispatch import timers
from services.dispatch.dispatches import service as dispatch_service
from shared.clock import SHANGHAI
from tests.integration.dispatch_helpers import (
    add_station,
    caregiver,
    make_bed_home,
    make_staff,
    staff_north_of,
)

HOME = (24.7236, 118.1520)


@pytest.fixture
async def db(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


def handoff(elder_id: str, alert_id: uuid.UUID | None = None, kind: str = "emergency") -> dict:
    return {
        "alert_id": str(alert_id or uuid.uuid4()),
        "elder_id": elder_id,
        "kind": kind,
        "raised_at": datetime.now(UTC).isoformat(),
    }


async def chain(dispatch, org_id: str, steps: list[dict], rounds: int = 1) -> None:
    r = await dispatch.client.put(
        f"/v1/orgs/{org_id}/dispatch-settings",
        json={"chain": {"steps": steps, "max_rounds": rounds}},
        headers=dispatch.auth("admin"),
    )
    assert r.status_code == 200, r.text


async def test_handoff_offers_the_nearest_qualified_on_duty_insured_caregiver(registry, dispatch):
    home = await make_bed_home(registry)
    org = home["org"]
    near_station = await add_station(registry, org, HOME[0] + 0.002, HOME[1])
    far_station = await add_station(registry, org, HOME[0] + 0.02, HOME[1])
    near = await make_staff(registry, org, station=near_station)
    far = await make_staff(registry, org, station=far_station)
    await make_staff(registry, org, station=near_station, on_duty=False)
    await make_staff(registry, org, station=near_station, insured=False)
    await make_staff(registry, org, station=near_station, role="social_worker")
    await add_station(registry, org, HOME[0] + 0.5, HOME[1])  # 55 km: outside any radius
    body = handoff(home["elder"]["id"])
    r = await dispatch.post("/v1/dispatches", body, role="service")
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["status"] == "offered" and d["staff_id"] == near["id"]
    assert [c["staff_id"] for c in d["candidates"]] == [near["id"], far["id"]]
    assert [s["action"] for s in d["steps"]] == ["received", "offered"]
    # idempotent on alert_id itself, without the header
    again = await dispatch.post("/v1/dispatches", body, role="service")
    assert again.status_code == 200 and again.json()["id"] == d["id"]
    listed = await dispatch.get(
        "/v1/dispatches", role="admin", params={"alert_id": body["alert_id"]}
    )
    assert [x["id"] for x in listed.json()["items"]] == [d["id"]]
    # the offer is in the caregiver's feed
    tasks = await dispatch.get(f"/v1/staff/{near['id']}/tasks", **caregiver(near))
    assert [o["id"] for o in tasks.json()["offers"]] == [d["id"]]
    assert (
        await dispatch.post("/v1/dispatches", handoff(home["elder"]["id"]), role="admin")
    ).status_code == 403


async def test_elder_without_bed_or_candidate_goes_straight_to_the_call_tree(
    registry, dispatch, db
):
    from tests.integration.builders import make_elder

    elder = await make_elder(registry)  # no bed
    r = await dispatch.post("/v1/dispatches", handoff(elder["id"]), role="service")
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["status"] == "escalated" and d["staff_id"] is None and d["due_at"] is not None
    assert [s["action"] for s in d["steps"]] == ["received", "notify_family", "notify_community"]
    events = await db.fetch(
        "SELECT event, recipient_kind, payload FROM dispatch.notifications "
        "WHERE dispatch_id = $1 ORDER BY id",
        uuid.UUID(d["id"]),
    )
    assert [(e["event"], e["recipient_kind"]) for e in events] == [
        ("notify_family", "family"),
        ("notify_community", "community"),
    ]
    assert '"phone_masked": "139****0000"' in events[0]["payload"]  # never the clear number


async def test_decline_moves_on_at_once_and_no_answer_moves_on_when_the_wait_ends(
    registry, dispatch
):
    home = await make_bed_home(registry)
    org = home["org"]
    a = await staff_north_of(registry, org, HOME, 0.001)
    b = await staff_north_of(registry, org, HOME, 0.003)
    c = await staff_north_of(registry, org, HOME, 0.005)
    await chain(
        dispatch,
        org["id"],
        [{"action": "offer", "wait_s": 30}] * 3 + [{"action": "advise_120", "wait_s": 0}],
    )
    d = (await dispatch.post("/v1/dispatches", handoff(home["elder"]["id"]), role="service")).json()
    assert d["staff_id"] == a["id"]
    # only the offered caregiver may answer
    assert (  # b is not offered it yet: b does not even see it
        await dispatch.post(f"/v1/dispatches/{d['id']}/accept", **caregiver(b))
    ).status_code == 404
    r = await dispatch.post(f"/v1/dispatches/{d['id']}/decline", **caregiver(a))
    assert r.status_code == 200 and r.json()["staff_id"] == b["id"], r.text
    # b does not answer: 30 s later the timer offers it to c
    sm = dispatch.app.state.sessionmaker
    async with sm.begin() as session:
        assert (
            await dispatch_service.fire_due(
                session=session, now=datetime.now(UTC) + timedelta(seconds=5)
            )
            == 0
        )
    async with sm.begin() as session:
        await dispatch_service.fire_due(
            session=session, now=datetime.now(UTC) + timedelta(seconds=31)
        )
    d = (await dispatch.get(f"/v1/dispatches/{d['id']}", role="admin")).json()
    assert d["staff_id"] == c["id"]
    assert [s["action"] for s in d["steps"]] == [
        "received",
        "offered",
        "declined",
        "offered",
        "timed_out",
        "offered",
    ]
    async with sm.begin() as session:
        await dispatch_service.fire_due(
            session=session, now=datetime.now(UTC) + timedelta(seconds=62)
        )
    d = (await dispatch.get(f"/v1/dispatches/{d['id']}", role="admin")).json()
    assert d["status"] == "escalated" and d["due_at"] is None and d["advice"]
    assert [s["action"] for s in d["steps"]][-3:] == ["timed_out", "advise_120", "exhausted"]


async def test_accept_check_in_arrives_check_out_resolves_the_alert_through_the_outbox(
    registry, dispatch, db
):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    body = handoff(home["elder"]["id"])
    d = (await dispatch.post("/v1/dispatches", body, role="service")).json()
    r = await dispatch.post(f"/v1/dispatches/{d['id']}/accept", **caregiver(staff))
    assert r.status_code == 200 and r.json()["status"] == "accepted" and r.json()["visit_id"], (
        r.text
    )
    again = await dispatch.post(f"/v1/dispatches/{d['id']}/accept", **caregiver(staff))
    assert again.status_code == 200 and again.json()["visit_id"] == r.json()["visit_id"]
    visit_id = r.json()["visit_id"]
    tasks = (await dispatch.get(f"/v1/staff/{staff['id']}/tasks", **caregiver(staff))).json()
    assert [x["id"] for x in tasks["active"]] == [d["id"]] and visit_id in [
        v["id"] for v in tasks["visits"]
    ]
    now = datetime.now(UTC)
    r = await dispatch.post(
        f"/v1/visits/{visit_id}/check-in",
        {"lat": HOME[0], "lon": HOME[1], "at": now.isoformat()},
        **caregiver(staff),
    )
    assert r.status_code == 201, r.text
    assert (await dispatch.get(f"/v1/dispatches/{d['id']}", role="admin")).json()[
        "status"
    ] == "arrived"
    r = await dispatch.post(
        f"/v1/visits/{visit_id}/check-out",
        {
            "lat": HOME[0],
            "lon": HOME[1],
            "at": datetime.now(UTC).isoformat(),
            "items_done": ["助急"],
            "note": "老人摔倒，已扶起",
        },
        **caregiver(staff),
    )
    assert r.status_code == 201, r.text
    final = (await dispatch.get(f"/v1/dispatches/{d['id']}", role="admin")).json()
    assert final["status"] == "resolved" and final["arrived_at"] and final["resolved_at"]
    row = await db.fetchrow(
        "SELECT path, body FROM dispatch.outbox WHERE idempotency_key = $1",
        f"resolve:{body['alert_id']}",
    )
    assert (
        row["path"] == f"/v1/alerts/{body['alert_id']}/resolve"
        and '"outcome": "resolved"' in row["body"]
    )


async def test_cancel_for_a_false_alarm_stops_the_chain_and_is_idempotent(registry, dispatch):
    home = await make_bed_home(registry)
    await make_staff(registry, home["org"])
    body = handoff(home["elder"]["id"])
    d = (await dispatch.post("/v1/dispatches", body, role="service")).json()
    for _ in range(2):
        r = await dispatch.post(
            "/v1/dispatches/cancel",
            {"alert_id": body["alert_id"], "reason": "false_alarm"},
            role="service",
        )
        assert (
            r.status_code == 200
            and r.json()["status"] == "cancelled"
            and r.json()["due_at"] is None
        )
    assert [s["action"] for s in r.json()["steps"]].count("cancelled") == 1
    assert r.json()["id"] == d["id"]
    # a cancel that overtakes its hand-off: the late hand-off finds the cancelled dispatch
    late = handoff(home["elder"]["id"])
    r = await dispatch.post(
        "/v1/dispatches/cancel", {**late, "reason": "false_alarm"}, role="service"
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await dispatch.post("/v1/dispatches", late, role="service")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


async def test_timer_loop_fires_from_the_database(registry, dispatch):
    home = await make_bed_home(registry)
    org = home["org"]
    a = await staff_north_of(registry, org, HOME, 0.001)
    b = await staff_north_of(registry, org, HOME, 0.003)
    await chain(
        dispatch, org["id"], [{"action": "offer", "wait_s": 1}, {"action": "offer", "wait_s": 60}]
    )
    d = (await dispatch.post("/v1/dispatches", handoff(home["elder"]["id"]), role="service")).json()
    assert d["staff_id"] == a["id"]
    from tests.waiting import eventually

    async def moved_on():
        await timers.tick(dispatch.app.state.sessionmaker)
        return (await dispatch.get(f"/v1/dispatches/{d['id']}", role="admin")).json()[
            "staff_id"
        ] == b["id"]

    await eventually(moved_on, within=10, interval=0.2)


async def test_kpis_per_org_and_month(registry, dispatch, db):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    quick = (
        await dispatch.post("/v1/dispatches", handoff(home["elder"]["id"]), role="service")
    ).json()
    assert (
        await dispatch.post(f"/v1/dispatches/{quick['id']}/accept", **caregiver(staff))
    ).status_code == 200
    r = await dispatch.post(
        f"/v1/dispatches/{quick['id']}/resolve", {"note": "ok"}, **caregiver(staff)
    )
    assert r.status_code == 200 and r.json()["status"] == "resolved", r.text
    slow = (
        await dispatch.post("/v1/dispatches", handoff(home["elder"]["id"]), role="service")
    ).json()
    assert slow["staff_id"] == staff["id"]
    # answered after 2 minutes: within 180 s, not within 60 s
    await db.execute(
        "UPDATE dispatch.dispatches SET raised_at = now() - interval '120 seconds' WHERE id = $1",
        uuid.UUID(slow["id"]),
    )
    assert (
        await dispatch.post(f"/v1/dispatches/{slow['id']}/accept", **caregiver(staff))
    ).status_code == 200
    month = datetime.now(UTC).astimezone(SHANGHAI).strftime("%Y-%m")
    r = await dispatch.get(
        f"/v1/kpis/orgs/{home['org']['id']}", role="admin", params={"month": month}
    )
    assert r.status_code == 200, r.text
    k = r.json()
    assert k["dispatches"] == 2
    fast, slow_k, site = k["kpis"]
    assert (fast["within_seconds"], fast["count"], fast["share"], fast["target"]) == (
        60,
        1,
        0.5,
        0.975,
    )
    assert (slow_k["within_seconds"], slow_k["count"], slow_k["met"]) == (180, 2, True)
    assert site["count"] == 0 and site["met"] is False


async def messages(db, dispatch_id: str) -> list[tuple[str, str]]:
    return [
        (r["event"], r["recipient_kind"])
        for r in await db.fetch(
            "SELECT event, recipient_kind FROM dispatch.notifications WHERE dispatch_id = $1 "
            "ORDER BY id",
            uuid.UUID(dispatch_id),
        )
    ]


async def test_no_path_ends_silently_the_desk_hears_when_nobody_is_left(registry, dispatch, db):
    from tests.integration.builders import make_elder, make_org

    # an org whose chain only offers, with nobody on duty: worked through at once
    org = await make_org(registry)
    home = await make_bed_home(registry, org)
    await chain(dispatch, org["id"], [{"action": "offer", "wait_s": 30}], rounds=2)
    d = (await dispatch.post("/v1/dispatches", handoff(home["elder"]["id"]), role="service")).json()
    assert d["status"] == "escalated" and d["due_at"] is None and d["advice"]
    assert [s["action"] for s in d["steps"]] == ["received", "exhausted"]
    assert await messages(db, d["id"]) == [("exhausted", "desk")]
    # an elder with no family on file: the family step tells the desk so
    lonely = await make_elder(registry, caregiver=False)
    d = (await dispatch.post("/v1/dispatches", handoff(lonely["id"]), role="service")).json()
    family_step = next(s for s in d["steps"] if s["action"] == "notify_family")
    assert family_step["detail"] == {"recipients": 0}
    assert await messages(db, d["id"]) == [
        ("no_family_contact", "desk"),
        ("notify_community", "community"),
    ]


async def test_an_accepted_responder_not_on_site_in_time_is_reported_and_may_still_arrive(
    registry, dispatch, db
):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    d = (await dispatch.post("/v1/dispatches", handoff(home["elder"]["id"]), role="service")).json()
    accepted = (await dispatch.post(f"/v1/dispatches/{d['id']}/accept", **caregiver(staff))).json()
    due = datetime.fromisoformat(accepted["due_at"]) - datetime.fromisoformat(
        accepted["accepted_at"]
    )
    assert due == timedelta(seconds=2700)  # policy: emergency.arrival_timeout_s
    sm = dispatch.app.state.sessionmaker
    async with sm.begin() as session:
        await dispatch_service.fire_due(
            session=session, now=datetime.now(UTC) + timedelta(seconds=2701)
        )
    late = (await dispatch.get(f"/v1/dispatches/{d['id']}", role="admin")).json()
    assert late["status"] == "accepted" and late["due_at"] is None
    assert late["staff_id"] == staff["id"] and late["steps"][-1]["action"] == "arrival_overdue"
    assert (await messages(db, d["id"]))[-2:] == [
        ("arrival_overdue", "desk"),
        ("arrival_overdue", "caregiver"),
    ]
    tasks = (await dispatch.get(f"/v1/staff/{staff['id']}/tasks", **caregiver(staff))).json()
    assert [x["id"] for x in tasks["active"]] == [d["id"]]  # still theirs
    r = await dispatch.post(
        f"/v1/visits/{accepted['visit_id']}/check-in",
        {"lat": HOME[0], "lon": HOME[1], "at": datetime.now(UTC).isoformat()},
        **caregiver(staff),
    )
    assert r.status_code == 201, r.text
    assert (await dispatch.get(f"/v1/dispatches/{d['id']}", role="admin")).json()[
        "status"
    ] == "arrived"


async def test_the_desk_resolving_a_dispatch_tells_its_caregiver(registry, dispatch, db):
    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    d = (await dispatch.post("/v1/dispatches", handoff(home["elder"]["id"]), role="service")).json()
    assert d["staff_id"] == staff["id"]
    r = await dispatch.post(f"/v1/dispatches/{d['id']}/resolve", {"note": "家属已送医"})
    assert r.status_code == 200 and r.json()["status"] == "resolved", r.text
    assert (await messages(db, d["id"]))[-1] == ("resolved", "caregiver")
    # resolved by the caregiver itself: nobody else to tell
    d = (await dispatch.post("/v1/dispatches", handoff(home["elder"]["id"]), role="service")).json()
    await dispatch.post(f"/v1/dispatches/{d['id']}/accept", **caregiver(staff))
    r = await dispatch.post(f"/v1/dispatches/{d['id']}/resolve", {}, **caregiver(staff))
    assert r.status_code == 200, r.text
    assert ("resolved", "caregiver") not in await messages(db, d["id"])


async def test_responders_are_ranked_from_where_they_were_last_seen_today(registry, dispatch):
    home = await make_bed_home(registry)
    org = home["org"]
    near_station = await staff_north_of(registry, org, HOME, 0.01)
    roaming = await staff_north_of(registry, org, HOME, 0.05)
    # the roaming caregiver checked in and out of a visit next door this morning
    neighbour = await make_bed_home(registry, org, lat=HOME[0] + 0.001, lon=HOME[1])
    start = datetime.now(UTC) - timedelta(minutes=50)
    v = (
        await dispatch.post(
            "/v1/visits",
            {
                "bed_id": neighbour["bed"]["id"],
                "staff_id": roaming["id"],
                "planned_start": start.isoformat(),
                "planned_end": (start + timedelta(minutes=40)).isoformat(),
                "items": ["meal"],
            },
            role="org_admin",
            org=org["id"],
        )
    ).json()
    here = {"lat": HOME[0] + 0.001, "lon": HOME[1]}
    for step, ago in (("check-in", 50), ("check-out", 10)):
        at = (datetime.now(UTC) - timedelta(minutes=ago)).isoformat()
        body = {**here, "at": at, **({"items_done": ["meal"]} if step == "check-out" else {})}
        r = await dispatch.post(f"/v1/visits/{v['id']}/{step}", body, **caregiver(roaming))
        assert r.status_code == 201, r.text
    d = (await dispatch.post("/v1/dispatches", handoff(home["elder"]["id"]), role="service")).json()
    assert [c["staff_id"] for c in d["candidates"]] == [roaming["id"], near_station["id"]]
    assert d["staff_id"] == roaming["id"]


async def test_the_startup_heap_is_out_of_the_collectors_reach(dispatch):
    """A full collection over numpy, scipy and VROOM took ~90 ms: a hand-off caught by one
    missed its latency target. Startup freezes that heap (and pays VROOM's import)."""
    import gc
    import sys

    assert "vroom" in sys.modules and gc.get_freeze_count() > 50_000
