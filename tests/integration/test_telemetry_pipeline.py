"""The ingest pipeline against real PostgreSQL: store once, refuse garbage, raise alerts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from prometheus_client import REGISTRY

from services.telemetry.ingest.pipeline import Message, Pipeline
from tests.integration.telemetry_helpers import make_home, msg
from tests.waiting import eventually


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


async def test_the_last_will_of_a_retired_gateway_raises_nothing(registry, conn):
    home = await make_home(registry)
    gw = home["gateway"]
    pipeline = Pipeline()
    await run(conn, pipeline, (f"eldercare/v1/{gw}/status", b"online"))
    assert (await registry.post(f"/v1/devices/{gw}/retire")).status_code == 200
    await eventually(lambda: _forgotten(pipeline, conn, gw))
    out = await run(conn, pipeline, (f"eldercare/v1/{gw}/status", b"offline"))
    assert out.alerts == []


async def _forgotten(pipeline, conn, gw) -> bool:
    return gw not in await pipeline.directory.resolve(conn, {gw})


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


async def test_a_fast_device_clock_never_makes_a_home_look_active_later(registry, conn):
    """A gateway 8 hours fast (local time sent as UTC): its motion and bed state count from
    arrival, or inactivity and night bed exits would be hidden for hours."""
    home = await make_home(registry)
    arrived = datetime.now(UTC).replace(microsecond=0)
    fast = arrived + timedelta(hours=8)
    await run(
        conn,
        Pipeline(),
        msg(home, "pir", "motion", ts=fast, room="hall", state="active"),
        msg(home, "bed", "bed", ts=fast, state="out"),
        msg(home, "btn", "heartbeat", ts=fast, battery=90),
        at=arrived,
    )
    rows = {
        r["device_id"]: r
        for r in await conn.fetch(
            "SELECT * FROM telemetry.device_state WHERE gateway_id = $1", home["gateway"]
        )
    }
    assert rows[home["devices"]["pir"]]["last_motion_at"] == arrived
    assert rows[home["devices"]["bed"]]["bed_state_at"] == arrived
    assert rows[home["devices"]["btn"]]["last_heartbeat_at"] == arrived
    assert rows[home["devices"]["pir"]]["clock_skewed"] is True  # and it is flagged


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


# --- which device may send what; ts in the future; numbers for ts -------------------------
def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def topic_of(home, prefix: str, event: str) -> str:
    return f"eldercare/v1/{home['gateway']}/{home['devices'][prefix]}/{event}"


async def dead_reasons(conn, *topics: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT reason FROM telemetry.dead_letters WHERE topic = ANY($1::text[]) ORDER BY id",
        list(topics),
    )
    return [r["reason"] for r in rows]


async def test_vitals_from_a_door_or_motion_sensor_are_dead_lettered_not_stored(registry, conn):
    home = await make_home(registry)
    out = await run(
        conn,
        Pipeline(),
        msg(home, "door", "vitals", spo2=97),
        msg(home, "pir", "vitals", heart_rate=70),
        msg(home, "bed", "vitals", heart_rate=64),  # an under-mattress sensor may
        msg(home, "door", "door", state="open"),
    )
    assert (out.stored, out.dead) == (2, 2)
    assert (
        await dead_reasons(conn, topic_of(home, "door", "vitals"), topic_of(home, "pir", "vitals"))
        == ["event_not_allowed_for_device_kind"] * 2
    )
    vitals = await conn.fetchval(
        "SELECT count(*) FROM telemetry.events WHERE gateway_id = $1 AND event = 'vitals'",
        home["gateway"],
    )
    assert vitals == 1


async def test_an_emergency_from_a_device_kind_that_should_not_send_one_is_still_raised(
    registry, conn
):
    home = await make_home(registry)
    out = await run(conn, Pipeline(), msg(home, "door", "emergency", msg_id="door-sos"))
    assert out.stored == 1 and out.alerts[0].startswith("emergency:new")
    alert = await conn.fetchrow(
        "SELECT * FROM telemetry.alerts WHERE gateway_id = $1 AND kind = 'emergency'",
        home["gateway"],
    )
    details = orjson.loads(alert["details"])
    assert details["flags"] == ["event_not_allowed_for_device_kind"]
    assert details["device_kind"] == "door_sensor"
    assert str(alert["elder_id"]) == home["elder_id"] and alert["severity"] == "critical"
    assert await conn.fetchval(
        "SELECT count(*) FROM telemetry.outbox WHERE alert_id = $1", alert["id"]
    )  # handed to dispatch like any emergency


async def test_a_ts_far_ahead_is_refused_but_an_emergency_is_raised_at_arrival(registry, conn):
    home = await make_home(registry)
    now = datetime.now(UTC)
    future = now + timedelta(days=400)
    out = await run(
        conn,
        Pipeline(),
        msg(home, "vit", "vitals", ts=future, heart_rate=70),
        msg(home, "fall", "fall", ts=future, msg_id="future-fall", confidence=0.9),
        at=now,
    )
    assert (out.stored, out.dead) == (1, 1)
    assert await dead_reasons(conn, topic_of(home, "vit", "vitals")) == ["ts_in_future"]
    alert = await conn.fetchrow(
        "SELECT * FROM telemetry.alerts WHERE gateway_id = $1 AND kind = 'fall'", home["gateway"]
    )
    assert alert["first_event_at"] == now  # the arrival, not the device's year ahead
    assert orjson.loads(alert["details"])["flags"] == ["ts_in_future"]


async def test_a_numeric_ts_is_refused(registry, conn):
    home = await make_home(registry)
    topic = topic_of(home, "vit", "vitals")
    payload = orjson.dumps({"msg_id": "epoch", "ts": datetime.now(UTC).timestamp(), "spo2": 97})
    out = await run(conn, Pipeline(), (topic, payload))
    assert (out.stored, out.dead) == (0, 1)
    detail = await conn.fetchval(
        "SELECT detail FROM telemetry.dead_letters WHERE topic = $1 AND payload = $2",
        topic,
        payload,
    )
    assert detail.startswith("ts:")


async def test_a_nul_byte_is_bad_input_not_a_database_failure(registry, conn):
    home = await make_home(registry)
    topic = topic_of(home, "pir", "motion")
    payload = orjson.dumps(
        {"msg_id": "nul\u0000", "ts": datetime.now(UTC).isoformat(), "room": "a", "state": "idle"}
    )
    out = await run(conn, Pipeline(), (topic, payload), msg(home, "vit", "vitals", spo2=97))
    assert (out.stored, out.dead) == (1, 1)
    assert await dead_reasons(conn, topic) == ["invalid_field"]


# --- emergencies never fall silent ---------------------------------------------------------
async def test_an_unreadable_emergency_raises_unprocessed_emergency_with_its_dead_letter(
    registry, conn
):
    home = await make_home(registry)
    topic = topic_of(home, "btn", "emergency")
    out = await run(conn, Pipeline(), (topic, b'{"msg_id": "sos", "ts": 17'))
    assert out.dead == 1 and out.alerts[0].startswith("unprocessed_emergency:new")
    dead = await conn.fetchrow("SELECT * FROM telemetry.dead_letters WHERE topic = $1", topic)
    assert dead["reason"] == "malformed_json"
    alert = await conn.fetchrow(
        "SELECT * FROM telemetry.alerts WHERE gateway_id = $1 AND kind = 'unprocessed_emergency'",
        home["gateway"],
    )
    assert alert["severity"] == "critical" and str(alert["elder_id"]) == home["elder_id"]
    assert orjson.loads(alert["details"])["dead_letter_id"] == dead["id"]
    # the home is known, so a caregiver is sent as for a readable emergency
    handoff = await conn.fetchrow("SELECT * FROM telemetry.outbox WHERE alert_id = $1", alert["id"])
    assert handoff["path"] == "/v1/dispatches"
    assert orjson.loads(handoff["body"])["kind"] == "unprocessed_emergency"


async def test_a_refused_fall_inside_a_batch_is_alerted_too(registry, conn):
    home = await make_home(registry)
    items = [
        {"device_id": home["devices"]["fall"], "event": "fall", "msg_id": "f", "ts": 12},
        {
            "device_id": home["devices"]["vit"],
            "event": "vitals",
            "msg_id": "v",
            "ts": datetime.now(UTC).isoformat(),
            "spo2": 97,
        },
    ]
    out = await run(
        conn, Pipeline(), (f"eldercare/v1/{home['gateway']}/batch", orjson.dumps(items))
    )
    assert (out.stored, out.dead) == (1, 1)
    assert [a.split(":")[0] for a in out.alerts] == ["unprocessed_emergency"]


async def test_an_emergency_from_an_unregistered_device_of_a_known_gateway_alerts_its_elder(
    registry, conn
):
    home = await make_home(registry)
    ghost = f"btn-new-{home['gateway']}"
    payload = orjson.dumps({"msg_id": "g-1", "ts": datetime.now(UTC).isoformat()})
    topic = f"eldercare/v1/{home['gateway']}/{ghost}/emergency"
    out = await run(conn, Pipeline(), (topic, payload))
    assert out.stored == 1 and out.alerts[0].startswith("emergency:new")
    alert = await conn.fetchrow(
        "SELECT * FROM telemetry.alerts WHERE gateway_id = $1 AND kind = 'emergency'",
        home["gateway"],
    )
    assert str(alert["elder_id"]) == home["elder_id"]
    details = orjson.loads(alert["details"])
    assert details["flags"] == ["unknown_device"] and details["device_id"] == ghost
    assert await conn.fetchval(
        "SELECT count(*) FROM telemetry.outbox WHERE alert_id = $1", alert["id"]
    )
    # not a device the monitor should expect heartbeats from
    assert not await conn.fetchval(
        "SELECT count(*) FROM telemetry.device_state WHERE device_id = $1", ghost
    )


async def test_an_emergency_nobody_can_be_attributed_to_is_kept_and_alerted(conn):
    gw, dev = f"gw-ghost-{uuid.uuid4().hex[:8]}", f"btn-ghost-{uuid.uuid4().hex[:8]}"
    topic = f"eldercare/v1/{gw}/{dev}/emergency"
    payload = orjson.dumps({"msg_id": "lost", "ts": datetime.now(UTC).isoformat()})
    out = await run(conn, Pipeline(), (topic, payload))
    assert (out.stored, out.dead) == (0, 1)
    dead = await conn.fetchrow("SELECT * FROM telemetry.dead_letters WHERE topic = $1", topic)
    assert dead["reason"] == "unknown_device" and bytes(dead["payload"]) == payload  # raw
    alert = await conn.fetchrow(
        "SELECT * FROM telemetry.alerts WHERE gateway_id = $1 AND kind = $2",
        gw,
        "unknown_device_emergency",
    )
    assert alert["severity"] == "critical" and alert["elder_id"] is None
    assert orjson.loads(alert["details"])["dead_letter_id"] == dead["id"]
    # no home to send anyone to: the duty desk has it (dispatch could only refuse it)
    assert not await conn.fetchval(
        "SELECT count(*) FROM telemetry.outbox WHERE alert_id = $1", alert["id"]
    )


async def test_the_safety_net_copy_is_a_labelled_duplicate_and_adds_no_second_dead_letter(
    registry, conn
):
    home = await make_home(registry)
    pipeline = Pipeline()
    emergency = msg(home, "btn", "emergency", msg_id="net-1")
    garbage = (topic_of(home, "fall", "fall"), b"{broken")
    t = datetime.now(UTC)
    await pipeline.commit(conn, [Message(*emergency, t), Message(*garbage, t)])
    before = (
        sample("eldercare_ingest_duplicates_total", source="safety_net"),
        sample("eldercare_ingest_duplicates_total", source="redelivery"),
    )
    copies = [Message(*m, t, safety_net=True) for m in (emergency, garbage)]
    out = await pipeline.commit(conn, copies)
    assert (out.stored, out.dead, out.duplicates, out.alerts) == (0, 0, 2, [])
    assert sample("eldercare_ingest_duplicates_total", source="safety_net") == before[0] + 2
    assert sample("eldercare_ingest_duplicates_total", source="redelivery") == before[1]
    assert await dead_reasons(conn, garbage[0]) == ["malformed_json"]
    again = await pipeline.commit(conn, [Message(*emergency, t)])  # a QoS 1 redelivery
    assert again.duplicates_by_source == {"redelivery": 1}


# --- metrics count what committed, once -------------------------------------------------------
async def test_counters_move_only_when_the_transaction_commits(registry, conn, monkeypatch):
    home = await make_home(registry)
    batch = [
        msg(home, "vit", "vitals", heart_rate=70),
        (
            f"eldercare/v1/{home['gateway']}/ghost-{uuid.uuid4().hex[:6]}/heartbeat",
            orjson.dumps({"msg_id": "g", "ts": datetime.now(UTC).isoformat(), "battery": 90}),
        ),
    ]
    before = (
        sample("eldercare_ingest_events_total", event="vitals"),
        sample("eldercare_ingest_dead_letters_total", reason="unknown_device"),
    )
    pipeline = Pipeline()

    class Late(Exception):
        pass

    async def fails_last(*args, **kwargs):
        raise Late  # after events and dead letters were written in the transaction

    monkeypatch.setattr(pipeline, "_evaluate", fails_last)
    with pytest.raises(Late):
        await run(conn, pipeline, *batch)
    assert (
        sample("eldercare_ingest_events_total", event="vitals"),
        sample("eldercare_ingest_dead_letters_total", reason="unknown_device"),
    ) == before
    monkeypatch.undo()
    out = await run(conn, pipeline, *batch)
    assert (out.stored, out.dead) == (1, 1)
    assert (
        sample("eldercare_ingest_events_total", event="vitals"),
        sample("eldercare_ingest_dead_letters_total", reason="unknown_device"),
    ) == (before[0] + 1, before[1] + 1)


# --- the directory: no full reload on the message path -----------------------------------
class Spy:
    """The connection, recording each statement the pipeline sends through it."""

    def __init__(self, conn) -> None:
        self._conn = conn
        self.sql: list[str] = []

    def __getattr__(self, name):
        attr = getattr(self._conn, name)
        if name in ("fetch", "fetchrow", "fetchval", "execute"):

            async def recorded(query, *args, **kwargs):
                self.sql.append(query)
                return await attr(query, *args, **kwargs)

            return recorded
        return attr


async def test_an_urgent_message_never_reloads_the_whole_directory(registry, conn):
    from services.telemetry.ingest import directory

    home = await make_home(registry)
    pipeline = Pipeline()
    assert pipeline.directory.loaded_at == 0.0  # never loaded: the old code reloaded here
    spy = Spy(conn)
    async with conn.transaction():
        out = await pipeline.process(
            spy, [Message(*msg(home, "btn", "emergency"), datetime.now(UTC))]
        )
    assert out.stored == 1
    lookups = [q for q in spy.sql if "registry.devices" in q]
    assert lookups and all(q == directory._ONE for q in lookups)


async def test_a_registration_clears_the_negative_cache_at_once(registry, database_url):
    from services.telemetry.ingest.directory import DeviceDirectory

    home = await make_home(registry)
    new_device = f"vit2-{home['gateway']}"
    directory = DeviceDirectory()
    task = asyncio.create_task(directory.maintain(database_url))
    conn = await asyncpg.connect(database_url)
    try:
        await eventually(lambda: _true(directory.listening and directory.loaded_at))
        assert await directory.resolve(conn, {new_device}) == {}
        assert new_device in directory._unknown  # remembered as unknown while listening
        r = await registry.post(
            "/v1/devices",
            {
                "device_id": new_device,
                "gateway_id": home["gateway"],
                "kind": "vital_monitor",
                "elder_id": home["elder_id"],
            },
        )
        assert r.status_code == 201, r.text
        # NOTIFY at commit: resolvable well before the 30 s negative TTL would have run out
        await eventually(lambda: _true(new_device not in directory._unknown), within=5)
        found = await directory.resolve(conn, {new_device})
        assert found[new_device].elder_id == uuid.UUID(home["elder_id"])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await conn.close()


async def test_a_retired_device_is_forgotten_at_once(registry, database_url):
    from services.telemetry.ingest.directory import DeviceDirectory

    home = await make_home(registry)
    device = home["devices"]["door"]
    directory = DeviceDirectory()
    task = asyncio.create_task(directory.maintain(database_url))
    conn = await asyncpg.connect(database_url)
    try:
        await eventually(lambda: _true(directory.listening and directory.loaded_at))
        assert device in await directory.resolve(conn, {device})
        await conn.execute(
            "UPDATE registry.devices SET status = 'retired' WHERE device_id = $1", device
        )
        await eventually(lambda: _true(device not in directory._known), within=5)
        assert await directory.resolve(conn, {device}) == {}
    finally:
        await conn.execute(
            "UPDATE registry.devices SET status = 'active' WHERE device_id = $1", device
        )
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await conn.close()


async def _true(value) -> bool:
    return bool(value)
