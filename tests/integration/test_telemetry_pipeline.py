"""The ingest pipeline against real PostgreSQL: store once, refuse garbage, raise alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from prometheus_client import REGISTRY

from services.telemetry.ingest.pipeline import Message, Pipeline
from tests.integration.telemetry_helpers import make_home, msg


@pytest.fixture
async def conn(database_url):
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


async def run(conn, pipeline, *messages, at: datetime | None = None):
    """As the worker does: one transaction, metrics counted once it has committed."""
    received = at or datetime.now(UTC)
    return await pipeline.commit(conn, [Message(t, p, received) for t, p in messages])


async def test_emergency_raises_one_critical_alert_with_outbox(registry, conn):
    home = await make_home(registry)
    pipeline = Pipeline()
    emergency = msg(home, "btn", "emergency", msg_id="e-1", button="main")
    out = await run(conn, pipeline, emergency)
    assert out.stored == 1 and len(out.alerts) == 1 and ":new:" in out.alerts[0]
    again = await run(conn, pipeline, emergency)  # QoS 1 redelivery
    assert (again.stored, again.duplicates, again.alerts) == (0, 1, [])
    alerts = await conn.fetch(
        "SELECT * FROM telemetry.alerts WHERE gateway_id = $1", home["gateway"]
    )
    assert [(a["kind"], a["severity"], a["status"]) for a in alerts] == [
        ("emergency", "critical", "open")
    ]
    outbox = await conn.fetch("SELECT * FROM telemetry.outbox WHERE alert_id = $1", alerts[0]["id"])
    assert len(outbox) == 1
    body = orjson.loads(outbox[0]["body"])
    assert body["kind"] == "emergency" and body["elder_id"] == home["elder_id"]
    assert outbox[0]["idempotency_key"] == f"alert:{alerts[0]['id']}"
    log = await conn.fetch(
        "SELECT action FROM telemetry.alert_log WHERE alert_id = $1", alerts[0]["id"]
    )
    assert [r["action"] for r in log] == ["raised"]


async def test_second_press_within_window_is_counted_not_raised(registry, conn):
    home = await make_home(registry)
    pipeline = Pipeline()
    await run(conn, pipeline, msg(home, "btn", "emergency", button="main"))
    out = await run(conn, pipeline, msg(home, "btn", "emergency", button="main"))
    assert ":repeat:" in out.alerts[0]
    row = await conn.fetchrow(
        "SELECT occurrences FROM telemetry.alerts WHERE gateway_id = $1", home["gateway"]
    )
    assert row["occurrences"] == 2


async def test_garbage_goes_to_dead_letters_and_the_batch_goes_on(registry, conn):
    home = await make_home(registry)
    gw = home["gateway"]
    good = msg(home, "vit", "vitals", heart_rate=72)
    garbage = [
        (f"eldercare/v1/{gw}/{home['devices']['vit']}/vitals", b"{not json"),
        (
            f"eldercare/v1/{gw}/{home['devices']['vit']}/vitals",
            orjson.dumps({"msg_id": "x", "ts": "2026-01-01T00:00:00Z", "heart_rate": "fast"}),
        ),
        (
            f"eldercare/v1/{gw}/{home['devices']['vit']}/vitals",
            orjson.dumps({"msg_id": "y", "ts": "2026-01-01T00:00:00Z", "heart_rate": 900}),
        ),
        (
            f"eldercare/v1/{gw}/ghost-device/vitals",
            orjson.dumps({"msg_id": "z", "ts": "2026-01-01T00:00:00Z", "heart_rate": 70}),
        ),
        (
            f"eldercare/v1/gw-someone-else/{home['devices']['vit']}/vitals",
            orjson.dumps({"msg_id": "w", "ts": "2026-01-01T00:00:00Z", "heart_rate": 70}),
        ),
        (f"eldercare/v1/{gw}/{home['devices']['vit']}/vitals", b"x" * (64 * 1024 + 1)),
        (f"eldercare/v1/{gw}/{home['devices']['vit']}/teleport", b"{}"),
        (
            f"eldercare/v1/{gw}/{home['devices']['vit']}/vitals",
            orjson.dumps({"msg_id": "n", "ts": "2026-01-01T00:00:00"}),
        ),  # no offset, no reading
    ]
    before = (
        REGISTRY.get_sample_value(
            "eldercare_ingest_dead_letters_total", {"reason": "unknown_device"}
        )
        or 0
    )
    out = await run(conn, Pipeline(), good, *garbage)
    assert out.stored == 1 and out.dead == len(garbage)
    after = REGISTRY.get_sample_value(
        "eldercare_ingest_dead_letters_total", {"reason": "unknown_device"}
    )
    assert after == before + 1
    rows = await conn.fetch(
        "SELECT reason FROM telemetry.dead_letters WHERE topic LIKE $1 OR topic LIKE $2 "
        "ORDER BY id",
        f"%{gw}%",
        f"%{home['devices']['vit']}%",
    )
    assert sorted(r["reason"] for r in rows) == sorted(
        [
            "malformed_json",
            "invalid_field",
            "out_of_range",
            "unknown_device",
            "gateway_mismatch",
            "too_large",
            "unknown_event",
            "invalid_field",
        ]
    )


async def test_sustained_vitals_raise_a_warning_single_readings_do_not(registry, conn):
    home = await make_home(registry)
    pipeline = Pipeline()
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    first = await run(conn, pipeline, msg(home, "vit", "vitals", ts=t0, heart_rate=118))
    assert first.alerts == []  # one high reading is noise (repeat: 3)
    await run(
        conn, pipeline, msg(home, "vit", "vitals", ts=t0 + timedelta(seconds=60), heart_rate=119)
    )
    third = await run(
        conn,
        pipeline,
        msg(home, "vit", "vitals", ts=t0 + timedelta(seconds=120), heart_rate=121, spo2=97),
    )
    assert len(third.alerts) == 1 and third.alerts[0].startswith("heart_rate_high:new")
    row = await conn.fetchrow(
        "SELECT severity, value FROM telemetry.alerts WHERE elder_id = $1::uuid AND kind = $2",
        home["elder_id"],
        "heart_rate_high",
    )
    assert row["severity"] == "warning" and row["value"] == 121


async def test_per_elder_override(registry, conn):
    home = await make_home(registry)
    await conn.execute(
        "INSERT INTO telemetry.elder_settings (elder_id, thresholds, schedule) "
        "VALUES ($1::uuid, $2, '{}')",
        home["elder_id"],
        orjson.dumps({"spo2": {"warn_low": 88, "crit_low": 85, "repeat": 1}}).decode(),
    )
    out = await run(conn, Pipeline(), msg(home, "vit", "vitals", spo2=89))
    assert out.alerts == []  # fine for this elder (COPD baseline)
    out = await run(conn, Pipeline(), msg(home, "vit", "vitals", spo2=84))
    assert out.alerts and out.alerts[0].startswith("spo2_low:new")


async def test_gateway_status_offline_then_online(registry, conn):
    home = await make_home(registry)
    gw = home["gateway"]
    pipeline = Pipeline()
    await run(conn, pipeline, (f"eldercare/v1/{gw}/status", b"online"))
    out = await run(conn, pipeline, (f"eldercare/v1/{gw}/status", b"offline"))
    assert out.alerts and out.alerts[0].startswith("gateway_offline:new")
    replay = await run(conn, pipeline, (f"eldercare/v1/{gw}/status", b"offline"))
    assert replay.alerts == []
    await run(conn, pipeline, (f"eldercare/v1/{gw}/status", b"online"))
    status = await conn.fetchval(
        "SELECT status FROM telemetry.alerts WHERE gateway_id = $1 AND kind = 'gateway_offline'", gw
    )
    assert status == "resolved"


async def test_device_state_and_out_of_order(registry, conn):
    home = await make_home(registry)
    now = datetime.now(UTC)
    pipeline = Pipeline()
    await run(
        conn,
        pipeline,
        msg(home, "bed", "bed", ts=now - timedelta(minutes=1), state="out"),
        msg(home, "bed", "bed", ts=now - timedelta(minutes=5), state="in"),  # late
        msg(home, "pir", "motion", ts=now, room="kitchen", state="active"),
        msg(home, "btn", "heartbeat", battery=12, rssi=-70),
        msg(home, "door", "door", ts=now + timedelta(hours=2), state="open"),
    )  # skewed
    state = {
        r["device_id"]: r
        for r in await conn.fetch(
            "SELECT * FROM telemetry.device_state WHERE gateway_id = $1", home["gateway"]
        )
    }
    assert state[home["devices"]["bed"]]["bed_state"] == "out"
    assert state[home["devices"]["pir"]]["last_motion_at"] is not None
    assert state[home["devices"]["btn"]]["battery"] == 12
    assert state[home["devices"]["door"]]["clock_skewed"] is True
    assert state[home["devices"]["bed"]]["clock_skewed"] is False
    stored = await conn.fetch(
        "SELECT device_ts, received_at FROM telemetry.events WHERE device_id = $1",
        home["devices"]["bed"],
    )
    assert len(stored) == 2  # out-of-order events are stored, with both times
    low = await conn.fetchval(
        "SELECT count(*) FROM telemetry.alerts WHERE device_id = $1 AND kind = 'low_battery'",
        home["devices"]["btn"],
    )
    assert low == 1


async def test_batch_topic(registry, conn):
    home = await make_home(registry)
    ts = datetime.now(UTC).isoformat()
    items = [
        {
            "device_id": home["devices"]["vit"],
            "event": "vitals",
            "msg_id": f"b-{i}",
            "ts": ts,
            "heart_rate": 70 + i,
        }
        for i in range(20)
    ]
    items.append(
        {
            "device_id": home["devices"]["pir"],
            "event": "motion",
            "msg_id": "m-1",
            "ts": ts,
            "room": "bedroom",
            "state": "idle",
        }
    )
    topic = f"eldercare/v1/{home['gateway']}/batch"
    out = await run(conn, Pipeline(), (topic, orjson.dumps(items)))
    assert out.stored == 21
    out = await run(conn, Pipeline(), (topic, orjson.dumps(items)))
    assert (out.stored, out.duplicates) == (0, 21)
    out = await run(conn, Pipeline(), (topic, orjson.dumps([{"device_id": 1}])))
    assert out.dead == 1


async def test_one_bad_item_does_not_sink_an_emergency_in_the_same_batch(registry, conn):
    home = await make_home(registry)
    ts = datetime.now(UTC).isoformat()
    items = [
        {
            "device_id": home["devices"]["vit"],
            "event": "vitals",
            "msg_id": "v-bad",
            "ts": ts,
            "heart_rate": 999,
        },
        {
            "device_id": home["devices"]["btn"],
            "event": "emergency",
            "msg_id": "e-in-batch",
            "ts": ts,
            "button": "pendant",
        },
    ]
    out = await run(
        conn, Pipeline(), (f"eldercare/v1/{home['gateway']}/batch", orjson.dumps(items))
    )
    assert (out.stored, out.dead) == (1, 1)
    assert out.alerts and out.alerts[0].startswith("emergency:new")
    reason = await conn.fetchval(
        "SELECT reason FROM telemetry.dead_letters WHERE topic = $1",
        f"eldercare/v1/{home['gateway']}/batch#0",
    )
    assert reason == "out_of_range"


async def test_a_late_status_copy_does_not_turn_a_reconnected_gateway_offline(registry, conn):
    home = await make_home(registry)
    gw = home["gateway"]
    t = datetime.now(UTC)
    await run(conn, Pipeline(), (f"eldercare/v1/{gw}/status", b"online"), at=t)
    await run(
        conn, Pipeline(), (f"eldercare/v1/{gw}/status", b"offline"), at=t + timedelta(seconds=1)
    )
    await run(
        conn, Pipeline(), (f"eldercare/v1/{gw}/status", b"online"), at=t + timedelta(seconds=2)
    )
    # the safety-net copy of the will arrives after the reconnect
    late = await run(
        conn, Pipeline(), (f"eldercare/v1/{gw}/status", b"offline"), at=t + timedelta(seconds=1)
    )
    assert late.alerts == []
    assert await conn.fetchval("SELECT online FROM telemetry.gateways WHERE gateway_id = $1", gw)
    active = await conn.fetchval(
        "SELECT count(*) FROM telemetry.alerts WHERE gateway_id = $1 AND kind = "
        "'gateway_offline' AND status IN ('open', 'acknowledged', 'dispatched')",
        gw,
    )
    assert active == 0
