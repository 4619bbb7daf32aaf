"""Ack only what is stored: the worker against a real PostgreSQL whose table, column or grant
is really missing, and against a pipeline with a bug in it.

Not the message's fault → the message stays unacknowledged, is retried, and readiness is
red (the ingest's own ``/readyz`` and the telemetry API's). The message's fault (a value the
database refuses) → a dead letter, and readiness stays green. An emergency is never acked
without its alert, or a dead letter plus an ``unprocessed_emergency`` alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import asyncpg
import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
from prometheus_client import REGISTRY

from services.telemetry.ingest.health import OpsServer
from services.telemetry.ingest.pipeline import Pipeline
from services.telemetry.ingest.worker import RETRY_LIMIT, IngestWorker
from tests.integration.telemetry_helpers import make_home, msg
from tests.waiting import eventually

ROLE = "ingest_limited"


@pytest.fixture
async def db(database_url):
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def limited(db, database_url):
    """A database role with what the ingest needs — and the test takes some of it away."""
    if not await db.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", ROLE):
        await db.execute(f"CREATE ROLE {ROLE} LOGIN")
    await db.execute(f"GRANT USAGE ON SCHEMA telemetry, registry TO {ROLE}")
    await db.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA telemetry TO {ROLE}"
    )
    await db.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA telemetry TO {ROLE}")
    await db.execute(f"GRANT SELECT ON registry.devices TO {ROLE}")
    yield database_url.replace("://postgres@", f"://{ROLE}@", 1)
    await db.execute(f"GRANT INSERT ON ALL TABLES IN SCHEMA telemetry TO {ROLE}")


def publish(broker, *messages: tuple[str, bytes]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:6]}")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        for info in [client.publish(t, p, qos=1) for t, p in messages]:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


@contextlib.asynccontextmanager
async def ingest(settings, broker, *, database_url: str | None = None):
    """A worker (recording what it acks) with its ops endpoints, once subscribed. The client
    id is the one every test uses: see ``telemetry_helpers.running``."""
    stop = asyncio.Event()
    update = {"mqtt_url": broker.url, "mqtt_shared": broker.shared}
    if database_url:
        update["database_url"] = database_url
    worker = IngestWorker(settings.model_copy(update=update), client_id="ingest-test")
    acked: list = []
    real_ack = worker._ack

    def ack(batch) -> None:
        acked.extend(batch)
        real_ack(batch)

    worker._ack = ack  # type: ignore[method-assign]
    worker.acked = acked  # type: ignore[attr-defined]
    ops = OpsServer(worker.health, 0, host="127.0.0.1").start()
    worker.ops_port = ops.port  # type: ignore[attr-defined]
    task = asyncio.create_task(worker.run(stop))
    try:
        assert await asyncio.to_thread(worker.subscribed.wait, 15), "worker never subscribed"
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        ops.stop()


async def ingest_ready(worker) -> tuple[int, dict]:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{worker.ops_port}/readyz")
    return r.status_code, r.json()


async def api_ingest_check(telemetry) -> str:
    r = await telemetry.client.get("/readyz")
    return r.json()["checks"]["ingest"]


async def failing(worker, consumer: str, error: str, attempts: int = 1) -> bool:
    """The consumer fails with ``error`` — itself, or through the message it parked (after
    ``RETRY_LIMIT`` attempts a message is retried on its own; ``attempts`` counts both)."""
    mine, parked = (worker.health.failures.get(c) for c in (consumer, "parked"))
    if mine is not None and mine.error.startswith(error) and mine.attempts >= attempts:
        return True
    return (
        parked is not None
        and parked.error.startswith(error)
        and RETRY_LIMIT + parked.attempts - 1 >= attempts
    )


async def stored(db, device: str, msg_id: str) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM telemetry.events WHERE device_id = $1 AND msg_id = $2",
        device,
        msg_id,
    )


async def dead_letters(db, topic: str) -> list:
    return await db.fetch(
        "SELECT reason, payload FROM telemetry.dead_letters WHERE topic = $1 ORDER BY id", topic
    )


def acked(worker, topic: str) -> int:
    return sum(m.topic == topic for m in worker.acked)


async def until(predicate) -> bool:
    return bool(predicate())


# --- not the message's fault: retried, unacknowledged, readiness red ---------------------
async def test_a_missing_privilege_keeps_the_message_unacked_and_readiness_red(
    registry, settings, broker, db, limited, telemetry
):
    home = await make_home(registry)
    device = home["devices"]["vit"]
    topic, payload = msg(home, "vit", "vitals", msg_id="priv-1", heart_rate=70)
    await db.execute(f"REVOKE INSERT ON telemetry.events FROM {ROLE}")
    async with ingest(settings, broker, database_url=limited) as worker:
        status, body = await ingest_ready(worker)
        assert status == 200 and body["checks"]["store"] == "ok"
        publish(broker, (topic, payload))
        await eventually(lambda: failing(worker, "bulk", "InsufficientPrivilegeError", 3))
        status, body = await ingest_ready(worker)
        assert status == 503 and body["status"] == "unavailable"
        store = body["checks"].get("store:bulk") or body["checks"]["store:parked"]
        assert "InsufficientPrivilegeError" in store
        assert "permission denied" not in str(body)  # the class, not the exception's text
        # the API's readiness names the part that is down with a stable status (the details,
        # which process and since when, are in its log and on the ingest's own /readyz)
        await eventually(lambda: _when(api_ingest_check(telemetry), lambda c: c == "unavailable"))
        # retried three times and more, and still: not acked, not dead-lettered, not stored
        assert acked(worker, topic) == 0
        assert await dead_letters(db, topic) == []
        assert await stored(db, device, "priv-1") == 0
        await db.execute(f"GRANT INSERT ON telemetry.events TO {ROLE}")
        await eventually(lambda: stored(db, device, "priv-1"), within=30)
        await eventually(lambda: until(lambda: worker.health.storing()))
        assert (await ingest_ready(worker))[0] == 200
        await eventually(lambda: _when(api_ingest_check(telemetry), lambda c: c == "ok"))
    assert acked(worker, topic) == 1 and await stored(db, device, "priv-1") == 1
    assert await dead_letters(db, topic) == []


@pytest.mark.parametrize(
    ("break_sql", "mend_sql", "error"),
    [
        (
            "ALTER TABLE telemetry.device_state RENAME TO device_state_away",
            "ALTER TABLE telemetry.device_state_away RENAME TO device_state",
            "UndefinedTableError",
        ),
        (
            "ALTER TABLE telemetry.events RENAME COLUMN skew_s TO skew_s_away",
            "ALTER TABLE telemetry.events RENAME COLUMN skew_s_away TO skew_s",
            "UndefinedColumnError",
        ),
    ],
)
async def test_a_missing_table_or_column_is_retried_not_dead_lettered(
    registry, settings, broker, db, break_sql, mend_sql, error
):
    home = await make_home(registry)
    device = home["devices"]["btn"]
    msg_id = f"schema-{uuid.uuid4().hex[:6]}"
    topic, payload = msg(home, "btn", "heartbeat", msg_id=msg_id, battery=80)
    async with ingest(settings, broker) as worker:
        await db.execute(break_sql)
        try:
            publish(broker, (topic, payload))
            await eventually(lambda: failing(worker, "bulk", error, 3))
            assert (await ingest_ready(worker))[0] == 503
            assert acked(worker, topic) == 0 and await dead_letters(db, topic) == []
        finally:
            await db.execute(mend_sql)
        await eventually(lambda: stored(db, device, msg_id), within=30)
        await eventually(lambda: until(lambda: acked(worker, topic)))
    assert await stored(db, device, msg_id) == 1 and await dead_letters(db, topic) == []
    assert worker.health.storing()


@pytest.mark.parametrize("bug", [TypeError, AttributeError, KeyError])
async def test_a_bug_is_retried_not_taken_for_bad_data(
    registry, settings, broker, db, monkeypatch, caplog, bug
):
    home = await make_home(registry)
    device = home["devices"]["vit"]
    msg_id = f"bug-{uuid.uuid4().hex[:6]}"
    topic, payload = msg(home, "vit", "vitals", msg_id=msg_id, spo2=83)
    broken = True
    real = Pipeline._update_state

    leak = f"spo2={80 + 3} for elder {home['elder_id']}"  # an exception text quoting data

    async def buggy(self, conn, fresh):
        if broken:
            raise bug(leak)
        return await real(self, conn, fresh)

    monkeypatch.setattr(Pipeline, "_update_state", buggy)
    caplog.set_level(logging.INFO)
    async with ingest(settings, broker) as worker:
        publish(broker, (topic, payload))
        await eventually(lambda: failing(worker, "bulk", bug.__name__, RETRY_LIMIT + 1))
        assert acked(worker, topic) == 0 and await dead_letters(db, topic) == []
        assert (await ingest_ready(worker))[0] == 503
        broken = False
        await eventually(lambda: stored(db, device, msg_id), within=30)
        await eventually(lambda: until(lambda: acked(worker, topic)))
    assert await stored(db, device, msg_id) == 1 and await dead_letters(db, topic) == []
    logged = ingest_logs(caplog)
    assert bug.__name__ in logged and "in buggy" in logged  # the class, and where
    assert "spo2=83" not in logged and home["elder_id"] not in logged


async def test_when_the_dead_letter_insert_fails_the_message_is_not_acked(
    registry, settings, broker, db, limited
):
    home = await make_home(registry)
    topic = f"eldercare/v1/{home['gateway']}/{home['devices']['vit']}/vitals"
    garbage = b'{"msg_id": "dl-' + uuid.uuid4().hex[:6].encode() + b'", "heart_rate": "fast"'
    await db.execute(f"REVOKE INSERT ON telemetry.dead_letters FROM {ROLE}")
    async with ingest(settings, broker, database_url=limited) as worker:
        publish(broker, (topic, garbage))
        await eventually(lambda: failing(worker, "bulk", "InsufficientPrivilegeError", 3))
        assert acked(worker, topic) == 0 and await dead_letters(db, topic) == []
        await db.execute(f"GRANT INSERT ON telemetry.dead_letters TO {ROLE}")
        rows = await eventually(lambda: dead_letters(db, topic), within=30)
        await eventually(lambda: until(lambda: acked(worker, topic)))
    assert [(r["reason"], bytes(r["payload"])) for r in rows] == [("malformed_json", garbage)]


# --- emergencies: their alert, or a dead letter plus unprocessed_emergency ----------------
async def unprocessed(db, gateway: str) -> list:
    return await db.fetch(
        "SELECT * FROM telemetry.alerts WHERE gateway_id = $1 AND kind = 'unprocessed_emergency'",
        gateway,
    )


async def test_an_emergency_the_store_refuses_is_set_aside_with_its_alert(
    registry, settings, broker, db, limited
):
    home = await make_home(registry)
    topic, payload = msg(home, "btn", "emergency", msg_id="sos-priv", button="pendant")
    await db.execute(f"REVOKE INSERT ON telemetry.events FROM {ROLE}")
    try:
        async with ingest(settings, broker, database_url=limited) as worker:
            publish(broker, (topic, payload))
            alerts = await eventually(lambda: unprocessed(db, home["gateway"]), within=30)
            await eventually(lambda: until(lambda: acked(worker, topic)))
    finally:
        await db.execute(f"GRANT INSERT ON telemetry.events TO {ROLE}")
    [alert] = alerts
    assert alert["severity"] == "critical" and str(alert["elder_id"]) == home["elder_id"]
    [dead] = await db.fetch(
        "SELECT * FROM telemetry.dead_letters WHERE id = $1",
        orjson.loads(alert["details"])["dead_letter_id"],
    )
    assert dead["reason"] == "processing_error" and bytes(dead["payload"]) == payload
    assert "InsufficientPrivilegeError" in dead["detail"]
    assert acked(worker, topic) == 1


async def test_an_emergency_that_trips_a_bug_is_set_aside_with_its_alert(
    registry, settings, broker, db, monkeypatch
):
    home = await make_home(registry)
    topic, payload = msg(home, "fall", "fall", msg_id="fall-bug", confidence=0.95)

    async def buggy(self, conn, accepted, outcome):
        raise TypeError("bug")

    monkeypatch.setattr(Pipeline, "_evaluate", buggy)
    async with ingest(settings, broker) as worker:
        publish(broker, (topic, payload))
        [alert] = await eventually(lambda: unprocessed(db, home["gateway"]), within=30)
        await eventually(lambda: until(lambda: acked(worker, topic)))
        assert worker.health.failures["urgent"].attempts >= RETRY_LIMIT
    assert await stored(db, home["devices"]["fall"], "fall-bug") == 0  # rolled back
    assert str(alert["elder_id"]) == home["elder_id"]
    assert (
        await db.fetchval(
            "SELECT reason FROM telemetry.dead_letters WHERE id = $1",
            orjson.loads(alert["details"])["dead_letter_id"],
        )
        == "processing_error"
    )


async def test_an_emergency_is_never_acked_while_neither_path_can_commit(
    registry, settings, broker, db, limited
):
    home = await make_home(registry)
    device = home["devices"]["btn"]
    topic, payload = msg(home, "btn", "emergency", msg_id="sos-none")
    await db.execute(f"REVOKE INSERT ON telemetry.events, telemetry.dead_letters FROM {ROLE}")
    try:
        async with ingest(settings, broker, database_url=limited) as worker:
            publish(broker, (topic, payload))
            # past the attempt that tries the fallback, and the one after it
            await eventually(
                lambda: failing(worker, "urgent", "InsufficientPrivilegeError", RETRY_LIMIT + 3),
                within=30,
            )
            assert acked(worker, topic) == 0
            assert await unprocessed(db, home["gateway"]) == []
            # the store comes back (the fallback still cannot): the emergency goes the normal way
            await db.execute(f"GRANT INSERT ON telemetry.events TO {ROLE}")
            await eventually(lambda: stored(db, device, "sos-none"), within=30)
            await eventually(lambda: until(lambda: acked(worker, topic)))
    finally:
        await db.execute(f"GRANT INSERT ON telemetry.dead_letters TO {ROLE}")
    kinds = await db.fetch(
        "SELECT kind FROM telemetry.alerts WHERE gateway_id = $1", home["gateway"]
    )
    assert [r["kind"] for r in kinds] == ["emergency"]
    assert acked(worker, topic) == 1


async def test_an_unacked_message_survives_a_restart_of_the_failing_worker(
    registry, settings, broker, db, limited
):
    if broker.kind != "mosquitto":
        pytest.skip("needs a broker that redelivers a persistent session's unacked messages")
    home = await make_home(registry)
    device = home["devices"]["vit"]
    topic, payload = msg(home, "vit", "vitals", msg_id="restart-1", heart_rate=66)
    await db.execute(f"REVOKE INSERT ON telemetry.events FROM {ROLE}")
    try:
        async with ingest(settings, broker, database_url=limited) as worker:
            publish(broker, (topic, payload))
            await eventually(lambda: failing(worker, "bulk", "InsufficientPrivilegeError", 2))
        assert acked(worker, topic) == 0  # stopped while failing: never acked
    finally:
        await db.execute(f"GRANT INSERT ON telemetry.events TO {ROLE}")
    async with ingest(settings, broker, database_url=limited) as worker:
        # the broker redelivers what the first worker never acknowledged
        await eventually(lambda: stored(db, device, "restart-1"), within=30)
    assert await stored(db, device, "restart-1") == 1


# --- the message's fault: dead letter, readiness stays green ------------------------------
async def test_a_value_the_database_refuses_dead_letters_that_message_alone(
    registry, settings, broker, db, caplog
):
    home = await make_home(registry)
    tag = uuid.uuid4().hex[:6]
    good = [msg(home, "vit", "vitals", msg_id=f"ok-{tag}-{i}", heart_rate=70) for i in range(5)]
    poison = msg(home, "vit", "vitals", msg_id=f"poison-{tag}", heart_rate=187)
    errors_before = REGISTRY.get_sample_value(
        "eldercare_ingest_store_errors_total",
        {"consumer": "bulk", "error": "CheckViolationError"},
    )
    # A real check violation caused by the payload (the contract lets 187/min through).
    await db.execute(
        "ALTER TABLE telemetry.events ADD CONSTRAINT ck_test_poison "
        f"CHECK (msg_id <> 'poison-{tag}')"
    )
    caplog.set_level(logging.INFO)
    try:
        async with ingest(settings, broker) as worker:
            publish(broker, *good[:2], poison, *good[2:])
            await eventually(
                lambda: db.fetchval(
                    "SELECT count(*) = 5 FROM telemetry.events WHERE msg_id LIKE $1",
                    f"ok-{tag}-%",
                )
            )
            [dead] = await eventually(lambda: dead_letters(db, poison[0]))
            await eventually(lambda: until(lambda: acked(worker, poison[0]) == 6))
            assert worker.health.storing() and (await ingest_ready(worker))[0] == 200
    finally:
        await db.execute("ALTER TABLE telemetry.events DROP CONSTRAINT ck_test_poison")
    assert dead["reason"] == "processing_error" and bytes(dead["payload"]) == poison[1]
    assert (
        REGISTRY.get_sample_value(
            "eldercare_ingest_store_errors_total",
            {"consumer": "bulk", "error": "CheckViolationError"},
        )
        == errors_before
    )  # bad data never counts as the store failing
    logged = ingest_logs(caplog)
    assert "CheckViolationError" in logged and "ck_test_poison" in logged
    assert "Failing row" not in logged and f"poison-{tag}" not in logged


def ingest_logs(caplog) -> str:
    """Everything the telemetry code logged, tracebacks included."""
    formatter = logging.Formatter()
    return "\n".join(
        formatter.format(r) for r in caplog.records if r.name.startswith("services.telemetry")
    )


async def _when(value, predicate):
    """``await value`` when ``predicate`` holds for it, else None (for ``eventually``)."""
    result = await value
    return result if predicate(result) else None


# --- nothing waits behind a message that keeps failing -----------------------------------
async def test_a_status_the_store_refuses_never_holds_up_the_emergency_after_it(
    registry, settings, broker, db, limited
):
    home = await make_home(registry)
    gw = home["gateway"]
    status = (f"eldercare/v1/{gw}/status", b"offline")
    emergency = msg(home, "btn", "emergency", msg_id="sos-behind")
    await db.execute(f"REVOKE INSERT, UPDATE ON telemetry.gateways FROM {ROLE}")
    try:
        async with ingest(settings, broker, database_url=limited) as worker:
            publish(broker, status, emergency)
            # the emergency goes the normal way while the status waits, unacknowledged
            await eventually(lambda: stored(db, home["devices"]["btn"], "sos-behind"), within=30)
            assert await db.fetchval(
                "SELECT count(*) FROM telemetry.alerts WHERE gateway_id = $1 AND kind = "
                "'emergency'",
                gw,
            )
            assert acked(worker, status[0]) == 0 and list(worker.parked)
            assert (await ingest_ready(worker))[0] == 503
            await db.execute(f"GRANT INSERT, UPDATE ON telemetry.gateways TO {ROLE}")
            await eventually(lambda: until(lambda: acked(worker, status[0])), within=30)
            await eventually(lambda: until(lambda: worker.health.storing()))
    finally:
        await db.execute(f"GRANT INSERT, UPDATE ON telemetry.gateways TO {ROLE}")
    assert (
        await db.fetchval("SELECT online FROM telemetry.gateways WHERE gateway_id = $1", gw)
        is False
    )


async def test_one_message_tripping_a_bug_never_stops_the_bulk_queue(
    registry, settings, broker, db, monkeypatch
):
    home = await make_home(registry)
    bad = msg(home, "vit", "vitals", msg_id="trips-bug", heart_rate=71)
    good = [msg(home, "vit", "vitals", msg_id=f"fine-{i}", heart_rate=70) for i in range(5)]
    real = Pipeline._update_state
    broken = True

    async def buggy(self, conn, fresh):
        if broken and any(a.event.msg_id == "trips-bug" for a in fresh):
            raise TypeError("bug")
        return await real(self, conn, fresh)

    monkeypatch.setattr(Pipeline, "_update_state", buggy)
    device = home["devices"]["vit"]
    async with ingest(settings, broker) as worker:
        publish(broker, bad, *good)
        for i in range(5):
            await eventually(lambda i=i: stored(db, device, f"fine-{i}"), within=30)
        assert await stored(db, device, "trips-bug") == 0
        assert not [m for m in worker.acked if b"trips-bug" in m.payload]
        assert [m for m in worker.parked if b"trips-bug" in m.payload]
        broken = False  # mended: the parked message is stored and acked
        await eventually(lambda: stored(db, device, "trips-bug"), within=30)
        await eventually(
            lambda: until(lambda: [m for m in worker.acked if b"trips-bug" in m.payload])
        )
    assert await dead_letters(db, bad[0]) == []
