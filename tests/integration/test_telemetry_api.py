"""Telemetry REST: alerts lifecycle, scoping, vitals (JSON and FHIR), device events, SSE."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
import uvicorn

from services.telemetry.ingest.pipeline import Message, Pipeline
from shared.embedded import free_port
from tests.integration.telemetry_helpers import make_home, msg


async def ingest(database_url: str, *messages) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await Pipeline().process(conn, [Message(t, p, datetime.now(UTC)) for t, p in messages])
    finally:
        await conn.close()


async def emergency_alert(registry, telemetry, database_url) -> tuple[dict, dict]:
    home = await make_home(registry)
    await ingest(database_url, msg(home, "btn", "emergency", button="main"))
    page = (await telemetry.get("/v1/alerts", params={"elder_id": home["elder_id"]})).json()
    assert len(page["items"]) == 1
    return home, page["items"][0]


async def test_lifecycle_ack_then_resolve_with_history(registry, telemetry, database_url):
    _, alert = await emergency_alert(registry, telemetry, database_url)
    assert (alert["status"], alert["severity"], alert["kind"]) == ("open", "critical", "emergency")
    path = f"/v1/alerts/{alert['id']}"
    r = await telemetry.post(
        f"{path}/ack",
        {"note": "已电话联系家属"},
        role="community",
        region="350212",
        sub="duty-officer-1",
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged" and r.json()["acknowledged_by"] == "duty-officer-1"
    assert (await telemetry.post(f"{path}/ack")).status_code == 409
    r = await telemetry.post(
        f"{path}/resolve", {"outcome": "false_alarm", "note": "误触"}, sub="duty-officer-1"
    )
    assert r.json()["status"] == "false_alarm" and r.json()["resolved_at"]
    assert (await telemetry.post(f"{path}/resolve")).status_code == 409
    history = (await telemetry.get(f"{path}/history")).json()
    assert history["next_cursor"] is None
    steps = history["items"]
    assert [h["action"] for h in steps] == ["raised", "acknowledged", "false_alarm"]
    assert [h["actor"] for h in steps][1:] == ["duty-officer-1", "duty-officer-1"]
    # a page at a time, oldest first
    first = (await telemetry.get(f"{path}/history", params={"limit": 2})).json()
    assert [h["action"] for h in first["items"]] == ["raised", "acknowledged"]
    rest = (
        await telemetry.get(f"{path}/history", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [h["action"] for h in rest["items"]] == ["false_alarm"] and rest["next_cursor"] is None
    r = await telemetry.post(f"{path}/resolve", {"outcome": "maybe"})
    assert r.status_code == 422


async def test_alert_scoping(registry, telemetry, database_url):
    home, alert = await emergency_alert(registry, telemetry, database_url)
    path = f"/v1/alerts/{alert['id']}"
    assert (await telemetry.get(path, role="community", region="350212")).status_code == 200
    assert (await telemetry.get(path, role="community", region="110101")).status_code == 404
    assert (await telemetry.get(path, role="org_admin", org=home["org"]["id"])).status_code == 200
    assert (await telemetry.get(path, role="family", elder=home["elder_id"])).status_code == 200
    assert (
        await telemetry.post(f"{path}/ack", role="family", elder=home["elder_id"])
    ).status_code == 403
    assert (await telemetry.get(path, role="gateway")).status_code == 403
    assert (await telemetry.client.get(path)).status_code == 401
    other = (await telemetry.get("/v1/alerts", role="community", region="110101")).json()
    assert alert["id"] not in {a["id"] for a in other["items"]}


async def test_vitals_json_and_fhir(registry, telemetry, database_url):
    home = await make_home(registry)
    ts = datetime.now(UTC) - timedelta(minutes=2)
    await ingest(
        database_url,
        msg(home, "vit", "vitals", ts=ts, heart_rate=72, resp_rate=16, spo2=97),
        msg(
            home,
            "vit",
            "vitals",
            ts=ts + timedelta(minutes=1),
            systolic=128,
            diastolic=82,
            temp_c=36.6,
        ),
    )
    path = f"/v1/elders/{home['elder_id']}/vitals"
    body = (await telemetry.get(path)).json()
    assert [i.get("heart_rate") for i in body["items"]] == [None, 72]
    bundle = (await telemetry.get(path, params={"format": "fhir"})).json()
    assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == 5
    codes = {e["resource"]["code"]["coding"][0]["code"] for e in bundle["entry"]}
    assert codes == {"8867-4", "9279-1", "2708-6", "85354-9", "8310-5"}
    assert (await telemetry.get(path, role="community", region="110101")).status_code == 404
    events = (await telemetry.get(f"/v1/devices/{home['devices']['vit']}/events")).json()
    assert len(events["items"]) == 2 and events["items"][0]["event"] == "vitals"


async def test_dead_letters_for_ops(registry, telemetry, database_url):
    await ingest(database_url, ("eldercare/v1/gw-x1/dev-x1/vitals", b"<xml/>"))
    page = (await telemetry.get("/v1/dead-letters", params={"reason": "malformed_json"})).json()
    rows = page["items"]
    assert rows and rows[0]["payload_preview"] == "<xml/>"
    assert (
        await telemetry.get("/v1/dead-letters", role="community", region="350212")
    ).status_code == 403


@pytest.fixture(scope="module")
def live_telemetry(settings):
    """The telemetry app on a real port: SSE needs a real streaming connection."""
    from services.telemetry.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = datetime.now() + timedelta(seconds=20)
    while not server.started:
        assert datetime.now() < deadline, "telemetry app did not start"
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


async def read_until(lines, predicate, within: float = 10.0) -> list[dict]:
    """SSE events from ``lines`` until one satisfies ``predicate`` (deadline ``within``)."""
    events: list[dict] = []
    current: dict = {}

    async def collect() -> None:
        async for line in lines:
            if line.startswith("id: "):
                current["id"] = line[4:]
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = orjson.loads(line[6:])
            elif line == "" and "id" in current:
                events.append(dict(current))
                current.clear()
                if predicate(events[-1]):
                    return

    await asyncio.wait_for(collect(), within)
    return events


def position(token: str) -> int:
    return int(token)


async def test_sse_stream_is_live_and_resumable(registry, telemetry, database_url, live_telemetry):
    conn = await asyncpg.connect(database_url)
    horizon = await conn.fetchval("SELECT coalesce(max(pos), 0) FROM telemetry.alert_log")
    await conn.close()
    start = str(horizon)
    headers = {"Authorization": f"Bearer {telemetry.token('admin')}", "Last-Event-ID": start}
    home = await make_home(registry)

    def about(action: str):
        return lambda e: (
            e["data"]["alert"]["gateway_id"] == home["gateway"] and e["event"] == f"alert.{action}"
        )

    async with httpx.AsyncClient(base_url=live_telemetry, timeout=30) as client:
        async with client.stream("GET", "/v1/alerts/stream", headers=headers) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.aiter_lines()
            await ingest(database_url, msg(home, "fall", "fall", confidence=0.9))
            raised = (await read_until(lines, about("raised")))[-1]
            assert position(raised["id"]) > position(start)
            assert raised["data"]["alert"]["severity"] == "critical"
            assert raised["data"]["position"] == raised["id"]
            alert_id = raised["data"]["alert_id"]
            await telemetry.post(f"/v1/alerts/{alert_id}/ack", sub="desk-2")
            acked = (await read_until(lines, about("acknowledged")))[-1]
            assert position(acked["id"]) > position(raised["id"])
            assert acked["data"]["actor"] == "desk-2"
        # a client that lost its connection resumes from its last id and misses nothing
        async with client.stream("GET", "/v1/alerts/stream", headers=headers) as r:
            replay = await read_until(r.aiter_lines(), about("acknowledged"))
        # ?after= is the same as Last-Event-ID; a resumed stream starts after the position
        async with client.stream(
            "GET",
            "/v1/alerts/stream",
            params={"after": raised["id"]},
            headers={"Authorization": headers["Authorization"]},
        ) as r:
            after_raise = await read_until(r.aiter_lines(), about("acknowledged"))
        bad = await client.get("/v1/alerts/stream", headers={**headers, "Last-Event-ID": "12-x"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "Last-Event-ID"
    mine = [e["id"] for e in replay if e["data"]["alert_id"] == alert_id]
    assert mine == [raised["id"], acked["id"]]
    assert [e["id"] for e in after_raise if e["data"]["alert_id"] == alert_id] == [acked["id"]]
    # a community elsewhere never sees this home's alerts
    other = {
        "Authorization": f"Bearer {telemetry.token('community', region='110101')}",
        "Last-Event-ID": start,
    }
    async with (
        httpx.AsyncClient(base_url=live_telemetry, timeout=30) as client,
        client.stream("GET", "/v1/alerts/stream", headers=other) as r,
    ):
        with pytest.raises(TimeoutError):
            await read_until(r.aiter_lines(), lambda e: True, within=2.5)


async def test_monitoring_settings(registry, telemetry, database_url):
    home = await make_home(registry)
    path = f"/v1/elders/{home['elder_id']}/monitoring"
    assert (await telemetry.get(path)).json() == {
        "thresholds": {},
        "schedule": {
            "day_start": None,
            "day_end": None,
            "night_start": None,
            "night_end": None,
            "inactivity_hours": None,
            "bed_exit_minutes": None,
        },
    }
    body = {
        "thresholds": {"spo2": {"warn_low": 88, "crit_low": 85, "repeat": 1}},
        "schedule": {"day_start": "08:30", "inactivity_hours": 3},
    }
    r = await telemetry.client.put(
        path, json=body, headers=telemetry.auth("community", region="350212")
    )
    assert r.status_code == 200, r.text
    stored = (await telemetry.get(path)).json()
    assert stored["thresholds"]["spo2"]["warn_low"] == 88
    assert stored["schedule"]["day_start"] == "08:30"
    # the pipeline applies the override
    await ingest(database_url, msg(home, "vit", "vitals", spo2=89))
    alerts = (await telemetry.get("/v1/alerts", params={"elder_id": home["elder_id"]})).json()
    assert alerts["items"] == []
    for bad in (
        {"thresholds": {"spo2": {"warn_low": 99, "warn_high": 95}}},
        {"thresholds": {"pulse": {"warn_low": 1}}},
        {"schedule": {"day_start": "25:00"}},
        {"schedule": {"inactivity_hours": -1}},
    ):
        r = await telemetry.client.put(path, json=bad, headers=telemetry.auth("admin"))
        assert r.status_code == 422, bad
    # the reason is for people: zh-CN by default, English on request
    unknown = {"thresholds": {"pulse": {"warn_low": 1}}}
    zh = await telemetry.client.put(path, json=unknown, headers=telemetry.auth("admin"))
    en = await telemetry.client.put(
        path, json=unknown, headers={**telemetry.auth("admin"), "Accept-Language": "en"}
    )
    assert "未知的生命体征" in zh.json()["errors"][0]["message"]
    assert en.json()["errors"][0]["message"].startswith("unknown vital 'pulse'")
    r = await telemetry.client.put(
        path, json=body, headers=telemetry.auth("family", elder=home["elder_id"])
    )
    assert r.status_code == 403


async def test_alert_filters_are_typed(registry, telemetry, database_url):
    home, alert = await emergency_alert(registry, telemetry, database_url)
    r = await telemetry.get("/v1/alerts", params={"since": "2026-11-26T10:00:00"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "since"
    since = datetime.fromisoformat(alert["raised_at"]) - timedelta(seconds=1)
    r = await telemetry.get(
        "/v1/alerts", params={"since": since.isoformat(), "elder_id": home["elder_id"]}
    )
    assert r.status_code == 200 and [a["id"] for a in r.json()["items"]] == [alert["id"]]
    r = await telemetry.get(
        "/v1/alerts", params={"kind": "emergency", "elder_id": home["elder_id"]}
    )
    assert [a["id"] for a in r.json()["items"]] == [alert["id"]]
    r = await telemetry.get("/v1/alerts", params={"kind": "earthquake"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"
    r = await telemetry.client.get(
        "/v1/alerts/stream",
        params={"after": "not-a-position"},
        headers={**telemetry.auth("admin"), "Accept-Language": "en"},
    )
    assert r.status_code == 422
    assert r.json()["detail"] == "after is not a position in the alert stream"
