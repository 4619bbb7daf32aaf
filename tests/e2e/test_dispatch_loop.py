"""End to end with the telemetry pipeline: a button press over MQTT → alert → outbox → dispatch
offers the right caregiver → no answer → the next → accept → check-in (arrival) → check-out →
dispatch's outbox resolves the alert in telemetry. A false alarm in telemetry cancels the
dispatch. Every service talks HTTP to the others, as in production."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import paho.mqtt.client as mqtt

from tests.integration.dispatch_helpers import add_station, make_staff, services_running
from tests.integration.telemetry_helpers import make_home, msg
from tests.waiting import eventually


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:6]}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


async def test_button_to_offer_to_next_to_accept_to_arrival_to_resolved(
    registry, settings, broker, database_url
):
    home = await make_home(registry)
    org = home["org"]
    elder = (await registry.get(f"/v1/elders/{home['elder_id']}")).json()
    near = await make_staff(
        registry, org, station=await add_station(registry, org, elder["lat"] + 0.001, elder["lon"])
    )
    nxt = await make_staff(
        registry, org, station=await add_station(registry, org, elder["lat"] + 0.004, elder["lon"])
    )
    async with services_running(settings, broker) as s:
        codec = registry.codec
        admin = {"Authorization": f"Bearer {codec.issue(role='admin')}"}

        def as_staff(staff):
            return {
                "Authorization": "Bearer "
                + codec.issue(role="caregiver", org=org["id"], staff=staff["id"])
            }

        async with (
            httpx.AsyncClient(base_url=s.service_url("dispatch"), timeout=10) as d,
            httpx.AsyncClient(base_url=s.service_url("telemetry"), timeout=10) as t,
        ):
            r = await d.put(
                f"/v1/orgs/{org['id']}/dispatch-settings",
                json={
                    "chain": {
                        "steps": [
                            {"action": "offer", "wait_s": 1},
                            {"action": "offer", "wait_s": 120},
                        ]
                    }
                },
                headers=admin,
            )
            assert r.status_code == 200, r.text
            pub = publisher(broker.port)
            try:
                pub.publish(*msg(home, "btn", "emergency", button="main"), qos=1).wait_for_publish(
                    5
                )
            finally:
                pub.loop_stop()
                pub.disconnect()

            async def dispatched():
                alerts = (
                    await t.get("/v1/alerts", params={"elder_id": home["elder_id"]}, headers=admin)
                ).json()
                if not alerts["items"]:
                    return None
                alert = alerts["items"][0]
                page = (
                    await d.get("/v1/dispatches", params={"alert_id": alert["id"]}, headers=admin)
                ).json()
                return page["items"] and (alert, page["items"][0])

            alert, first = await eventually(dispatched, within=20, interval=0.1)
            assert first["staff_id"] == near["id"]  # the nearest qualified caregiver

            async def offered_to_next():  # nobody answered within the 1 s wait
                x = (await d.get(f"/v1/dispatches/{first['id']}", headers=admin)).json()
                return x["staff_id"] == nxt["id"] and x

            await eventually(offered_to_next, within=10, interval=0.1)
            tasks = (await d.get(f"/v1/staff/{nxt['id']}/tasks", headers=as_staff(nxt))).json()
            assert [o["id"] for o in tasks["offers"]] == [first["id"]]
            r = await d.post(f"/v1/dispatches/{first['id']}/accept", headers=as_staff(nxt))
            assert r.status_code == 200, r.text
            visit_id = r.json()["visit_id"]
            here = {"lat": elder["lat"], "lon": elder["lon"]}
            r = await d.post(
                f"/v1/visits/{visit_id}/check-in",
                json={**here, "at": datetime.now(UTC).isoformat()},
                headers=as_staff(nxt),
            )
            assert r.status_code == 201, r.text
            assert (await d.get(f"/v1/dispatches/{first['id']}", headers=admin)).json()[
                "status"
            ] == "arrived"
            r = await d.post(
                f"/v1/visits/{visit_id}/check-out",
                json={**here, "at": datetime.now(UTC).isoformat(), "items_done": ["emergency_aid"]},
                headers=as_staff(nxt),
            )
            assert r.status_code == 201, r.text

            async def alert_resolved():
                a = (await t.get(f"/v1/alerts/{alert['id']}", headers=admin)).json()
                return a["status"] == "resolved" and a

            closed = await eventually(alert_resolved, within=15, interval=0.1)
            assert closed["resolved_by"] == "dispatch-relay"
            steps = [
                x["action"]
                for x in (await d.get(f"/v1/dispatches/{first['id']}", headers=admin)).json()[
                    "steps"
                ]
            ]
            assert steps == [
                "received",
                "offered",
                "timed_out",
                "offered",
                "accepted",
                "arrived",
                "resolved",
            ]


async def test_false_alarm_in_telemetry_cancels_the_dispatch(
    registry, settings, broker, database_url
):
    home = await make_home(registry)
    await make_staff(registry, home["org"])
    async with services_running(settings, broker) as s:
        admin = {"Authorization": f"Bearer {registry.codec.issue(role='admin')}"}
        async with (
            httpx.AsyncClient(base_url=s.service_url("dispatch"), timeout=10) as d,
            httpx.AsyncClient(base_url=s.service_url("telemetry"), timeout=10) as t,
        ):
            pub = publisher(broker.port)
            try:
                pub.publish(*msg(home, "fall", "fall", confidence=0.9), qos=1).wait_for_publish(5)
            finally:
                pub.loop_stop()
                pub.disconnect()

            async def offered():
                alerts = (
                    await t.get("/v1/alerts", params={"elder_id": home["elder_id"]}, headers=admin)
                ).json()
                if not alerts["items"]:
                    return None
                page = (
                    await d.get(
                        "/v1/dispatches",
                        params={"alert_id": alerts["items"][0]["id"]},
                        headers=admin,
                    )
                ).json()
                return page["items"] and (alerts["items"][0], page["items"][0])

            alert, first = await eventually(offered, within=20, interval=0.1)
            assert first["status"] == "offered"
            r = await t.post(
                f"/v1/alerts/{alert['id']}/resolve", json={"outcome": "false_alarm"}, headers=admin
            )
            assert r.status_code == 200, r.text

            async def cancelled():
                x = (await d.get(f"/v1/dispatches/{first['id']}", headers=admin)).json()
                return x["status"] == "cancelled" and x

            x = await eventually(cancelled, within=15, interval=0.1)
            assert x["due_at"] is None and x["steps"][-1]["detail"] == {"reason": "false_alarm"}
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT delivered_at FROM telemetry.outbox WHERE idempotency_key = $1",
            f"cancel:{alert['id']}",
        )
        assert row["delivered_at"] is not None
    finally:
        await conn.close()
