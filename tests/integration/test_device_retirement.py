"""Retiring devices: registry API (scoping, audit, ids stay taken, gateways take their
devices along) and the monitor (nothing alerts for a retired device; its open device
alerts close)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.telemetry.ingest.pipeline import Message, Pipeline
from services.telemetry.monitor import scan
from tests.integration.telemetry_helpers import make_home, msg


@pytest.fixture
async def conn(database_url):
    c = await asyncpg.connect(database_url)
    yield c
    await c.close()


async def feed(conn, at: datetime, *messages) -> None:
    async with conn.transaction():
        await Pipeline().process(conn, [Message(t, p, at) for t, p in messages])


async def run_scan(conn, now: datetime) -> list[str]:
    async with conn.transaction():
        return await scan(conn, now)


def about(done: list[str], *keys: str) -> list[str]:
    return [d for d in done if any(k in d for k in keys)]


async def test_retire_a_device_audited_scoped_and_its_id_stays_taken(registry, conn):
    home = await make_home(registry)
    org = home["org"]["id"]
    button = home["devices"]["btn"]
    path = f"/v1/devices/{button}/retire"
    assert (await registry.post(path, role="community", region="350212")).status_code == 403
    assert (await registry.post(path, role="org_admin", org=str(uuid.uuid4()))).status_code == 404
    r = await registry.post(path, {"reason": "faulty"}, role="org_admin", org=org, sub="inst-7")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["retired_by"], body["also_retired"]) == ("retired", "inst-7", [])
    assert body["retired_at"]
    # the history stays: the device is still there to read, as retired
    again = (await registry.get(f"/v1/devices/{button}")).json()
    assert again["status"] == "retired" and again["retired_at"] == body["retired_at"]
    active = (
        await registry.get(
            "/v1/devices", params={"gateway_id": home["gateway"], "status": "active"}
        )
    ).json()
    assert button not in {d["device_id"] for d in active["items"]}
    # twice is a conflict; registering the id again is refused (nobody inherits it)
    r = await registry.post(path, role="org_admin", org=org)
    assert r.status_code == 409 and r.json()["status_now"] == "retired"
    r = await registry.post(
        "/v1/devices",
        {
            "device_id": button,
            "gateway_id": home["gateway"],
            "kind": "emergency_button",
            "elder_id": home["elder_id"],
        },
    )
    assert r.status_code == 409
    audited = await conn.fetch(
        "SELECT actor_sub, action, fields FROM common.audit_log WHERE resource_id = $1",
        uuid.UUID(body["id"]),
    )
    assert [(a["actor_sub"], a["action"], a["fields"]) for a in audited] == [
        ("inst-7", "retire", [button, "reason:faulty"])
    ]
    r = await registry.post(path.replace(button, "no-such-device"))
    assert r.status_code == 404
    r = await registry.post(f"/v1/devices/{home['devices']['pir']}/retire", {"reason": "lost"})
    assert r.status_code == 422


async def test_retiring_a_gateway_retires_what_is_behind_it(registry):
    home = await make_home(registry)
    r = await registry.post(f"/v1/devices/{home['gateway']}/retire", {"reason": "service_ended"})
    assert r.status_code == 200, r.text
    assert sorted(r.json()["also_retired"]) == sorted(home["devices"].values())
    listed = (await registry.get("/v1/devices", params={"gateway_id": home["gateway"]})).json()
    assert {d["status"] for d in listed["items"]} == {"retired"}
    # nothing new can be put behind a retired gateway
    r = await registry.post(
        "/v1/devices",
        {
            "device_id": f"new-{home['gateway']}",
            "gateway_id": home["gateway"],
            "kind": "door_sensor",
            "elder_id": home["elder_id"],
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "gateway_id"


async def test_nothing_alerts_for_a_retired_device(registry, telemetry, conn):
    home = await make_home(registry)
    devices = home["devices"]
    t0 = datetime.now(UTC) - timedelta(hours=6)
    await feed(
        conn,
        t0,
        msg(home, "btn", "heartbeat", ts=t0, battery=80),
        msg(home, "pir", "motion", ts=t0, room="hall", state="active"),
        msg(home, "bed", "bed", ts=t0, state="out"),
    )
    # silent for hours: the button is offline (and, by day, the elder inactive)
    done = await run_scan(conn, datetime.now(UTC))
    assert about(done, devices["btn"]) == [f"device_offline:{devices['btn']}"]
    for prefix in ("btn", "pir", "bed"):
        r = await registry.post(f"/v1/devices/{devices[prefix]}/retire")
        assert r.status_code == 200, r.text
    done = await run_scan(conn, datetime.now(UTC))
    assert about(done, devices["btn"]) == [f"closed:device_offline:{devices['btn']}"]
    page = (await telemetry.get("/v1/alerts", params={"elder_id": home["elder_id"]})).json()
    offline = [a for a in page["items"] if a["kind"] == "device_offline"]
    assert {a["device_id"] for a in offline} == {devices[p] for p in ("btn", "pir", "bed")}
    assert {(a["status"], a["resolution_note"]) for a in offline} == {("resolved", "设备已停用")}
    offline = offline[0]
    r = await telemetry.client.get(
        f"/v1/alerts/{offline['id']}",
        headers={**telemetry.auth("admin"), "Accept-Language": "en"},
    )
    assert r.json()["resolution_note"] == "device retired"
    # from now on nothing is raised for them: not offline, not inactivity, not a bed exit,
    # however long they stay silent, and a low battery from one is not believed
    for later in (timedelta(0), timedelta(days=1), timedelta(days=30)):
        done = await run_scan(conn, datetime.now(UTC) + later)
        assert not about(done, devices["btn"], devices["pir"], devices["bed"], home["elder_id"])
    await feed(conn, datetime.now(UTC), msg(home, "btn", "heartbeat", battery=5))
    page = (await telemetry.get("/v1/alerts", params={"elder_id": home["elder_id"]})).json()
    assert "low_battery" not in {a["kind"] for a in page["items"]}
    still_there = await conn.fetchval(
        "SELECT count(*) FROM telemetry.events WHERE device_id = $1", devices["btn"]
    )
    assert still_there == 1  # history kept


async def test_a_retired_gateway_is_not_reported_offline(registry, conn):
    home = await make_home(registry)
    gw = home["gateway"]
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    heartbeat = msg(home, "btn", "heartbeat", ts=t0, battery=90)[1]
    await feed(conn, t0, (f"eldercare/v1/{gw}/{gw}/heartbeat", heartbeat))
    assert f"gateway_offline:{gw}" in await run_scan(conn, datetime.now(UTC))
    assert (await registry.post(f"/v1/devices/{gw}/retire")).status_code == 200
    done = await run_scan(conn, datetime.now(UTC))
    assert f"closed:gateway_offline:{gw}" in done
    assert not about(await run_scan(conn, datetime.now(UTC) + timedelta(days=2)), gw)
