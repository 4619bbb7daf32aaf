"""The ingest worker end to end: real broker, real PostgreSQL, a real HTTP receiver."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import orjson
import paho.mqtt.client as mqtt
import pytest
from prometheus_client import REGISTRY

from services.telemetry.ingest.worker import IngestWorker
from tests.integration.telemetry_helpers import make_home, msg, running
from tests.waiting import eventually


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:6]}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


@pytest.fixture
async def db(database_url):
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def test_emergency_becomes_one_alert_and_one_dispatch(
    registry, settings, broker, recorder, db
):
    home = await make_home(registry)
    pub = publisher(broker.port)
    async with running(settings, broker, recorder):
        topic, payload = msg(home, "btn", "emergency", msg_id="press-1", button="main")
        for _ in range(3):  # the gateway retries: QoS 1 duplicates
            pub.publish(topic, payload, qos=1).wait_for_publish(5)
        pub.publish(
            f"eldercare/v1/{home['gateway']}/{home['devices']['vit']}/vitals", b"{garbage", qos=1
        ).wait_for_publish(5)
        alerts = await eventually(
            lambda: db.fetch(
                "SELECT * FROM telemetry.alerts WHERE gateway_id = $1", home["gateway"]
            )
        )
        await eventually(
            lambda: db.fetchval(
                "SELECT count(*) FROM telemetry.dead_letters WHERE topic LIKE $1",
                f"%{home['devices']['vit']}%",
            )
        )
        await asyncio.to_thread(
            recorder.wait_for,
            lambda r: any(q["body"]["alert_id"] == str(alerts[0]["id"]) for q in r.requests),
        )
        # the worker keeps going after garbage
        later = msg(home, "vit", "vitals", heart_rate=70)
        pub.publish(*later, qos=1).wait_for_publish(5)
        await eventually(
            lambda: db.fetchval(
                "SELECT count(*) FROM telemetry.events WHERE device_id = $1 AND event = 'vitals'",
                home["devices"]["vit"],
            )
        )
        status = await eventually(
            lambda: db.fetchval(
                "SELECT status FROM telemetry.alerts WHERE id = $1 AND status = 'dispatched'",
                alerts[0]["id"],
            )
        )
    pub.loop_stop()
    assert len(alerts) == 1 and alerts[0]["kind"] == "emergency"
    assert alerts[0]["severity"] == "critical" and status == "dispatched"
    assert (
        await db.fetchval(
            "SELECT count(*) FROM telemetry.events WHERE device_id = $1", home["devices"]["btn"]
        )
        == 1
    )
    sent = [q for q in recorder.requests if q["body"]["alert_id"] == str(alerts[0]["id"])]
    assert len(sent) == 1
    assert sent[0]["path"] == "/v1/dispatches"
    assert sent[0]["key"] == f"alert:{alerts[0]['id']}"
    assert sent[0]["body"]["elder_id"] == home["elder_id"]
    assert sent[0]["auth"].startswith("Bearer ")


async def test_dispatch_outage_delays_but_never_drops(registry, settings, broker, recorder, db):
    home = await make_home(registry)
    recorder.status = 503
    pub = publisher(broker.port)
    async with running(settings, broker, recorder):
        pub.publish(*msg(home, "fall", "fall", confidence=0.93), qos=1).wait_for_publish(5)
        alert_id = await eventually(
            lambda: db.fetchval(
                "SELECT id FROM telemetry.alerts WHERE gateway_id = $1 AND kind = 'fall'",
                home["gateway"],
            )
        )
        await asyncio.to_thread(
            recorder.wait_for,
            lambda r: sum(q["body"]["alert_id"] == str(alert_id) for q in r.requests) >= 2,
        )
        recorder.status = 201  # dispatch is back
        await asyncio.to_thread(
            recorder.wait_for,
            lambda r: any(
                q["body"]["alert_id"] == str(alert_id) and q["status"] == 201 for q in r.requests
            ),
            20,
        )
        delivered = await eventually(
            lambda: db.fetchrow(
                "SELECT delivered_at, attempts FROM telemetry.outbox WHERE alert_id = $1 "
                "AND delivered_at IS NOT NULL",
                alert_id,
            )
        )
    pub.loop_stop()
    attempts = [q for q in recorder.requests if q["body"]["alert_id"] == str(alert_id)]
    assert [q["status"] for q in attempts][-1] == 201
    assert sum(q["status"] == 201 for q in attempts) == 1
    assert len({q["key"] for q in attempts}) == 1  # one idempotency key throughout
    assert delivered["attempts"] == len(attempts)


async def test_gateway_last_will_raises_offline(registry, settings, broker, recorder, db):
    home = await make_home(registry)
    gw = home["gateway"]
    async with running(settings, broker, recorder):
        gateway = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=gw)
        gateway.will_set(f"eldercare/v1/{gw}/status", b"offline", qos=1, retain=True)
        gateway.connect("127.0.0.1", broker.port)
        gateway.loop_start()
        gateway.publish(
            f"eldercare/v1/{gw}/status", b"online", qos=1, retain=True
        ).wait_for_publish(5)
        await eventually(
            lambda: db.fetchval("SELECT online FROM telemetry.gateways WHERE gateway_id = $1", gw)
        )
        gateway.loop_stop()
        gateway.socket().close()  # vanish without DISCONNECT: the broker sends the will
        alert = await eventually(
            lambda: db.fetchrow(
                "SELECT * FROM telemetry.alerts WHERE gateway_id = $1 AND kind = 'gateway_offline'",
                gw,
            ),
            within=60,
        )
    assert alert["status"] == "open" and alert["severity"] == "warning"
    assert orjson.loads(alert["details"])["source"]


async def test_split_processes_store_an_emergency_once(registry, settings, broker, db):
    """`--only urgent` and `--only bulk` side by side: both may see an emergency (the bulk
    path keeps it as a safety net); it is stored once and raises one alert."""
    home = await make_home(registry)
    stop = asyncio.Event()
    s = settings.model_copy(update={"mqtt_url": broker.url, "mqtt_shared": broker.shared})
    urgent = IngestWorker(s, client_id="ingest-test", only="urgent")
    bulk = IngestWorker(s, client_id="ingest-test", only="bulk")
    before = {
        source: _sample("eldercare_ingest_duplicates_total", source=source)
        for source in ("safety_net", "redelivery")
    }
    taken: dict[str, list] = {"urgent": [], "deferred": []}  # what each path has committed

    def spy_on(worker: IngestWorker) -> None:
        commit = worker._commit

        async def spy(pool, batch, consumer):
            await commit(pool, batch, consumer)
            if consumer in taken:
                taken[consumer].extend(batch)

        worker._commit = spy  # type: ignore[method-assign]

    spy_on(urgent)
    spy_on(bulk)
    tasks = [asyncio.create_task(urgent.run(stop)), asyncio.create_task(bulk.run(stop))]
    try:
        for worker in (urgent, bulk):
            assert await asyncio.to_thread(worker.subscribed.wait, 15)
        pub = publisher(broker.port)
        pub.publish(*msg(home, "btn", "emergency", msg_id="split-1"), qos=1).wait_for_publish(5)
        pub.publish(*msg(home, "vit", "vitals", heart_rate=70), qos=1).wait_for_publish(5)
        pub.loop_stop()
        # Only once both copies have been committed can "stored once" mean anything: the
        # urgent process's, and the bulk process's safety net's (taken up a second later).
        for path in ("urgent", "deferred"):
            await eventually(
                lambda path=path: _true(b"split-1" in b"".join(m.payload for m in taken[path]))
            )
        # Whichever came first stored it; the other copy is counted as a duplicate of its
        # kind (usually the net's, when the urgent process is first, as it is meant to be).
        after = {
            source: _sample("eldercare_ingest_duplicates_total", source=source) - before[source]
            for source in before
        }
        if urgent.stored:
            assert urgent.stored == 1 and after["safety_net"] >= 1
        else:  # the net was first: the urgent process found it stored
            assert after["redelivery"] >= 1
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
    assert await db.fetchval("SELECT count(*) FROM telemetry.events WHERE msg_id = 'split-1'") == 1
    assert (
        await db.fetchval(
            "SELECT count(*) FROM telemetry.alerts WHERE gateway_id = $1 AND kind = 'emergency'",
            home["gateway"],
        )
        == 1
    )
    assert set(urgent.links) == {"urgent"} and set(bulk.links) == {"bulk"}


def _sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _true(value) -> bool:
    return bool(value)


def test_every_queue_has_a_gauge(settings):
    worker = IngestWorker(settings, client_id="gauge-test")
    for name in ("urgent", "bulk", "deferred"):
        getattr(worker, name).extend([None] * 3)
        assert _sample("eldercare_ingest_queue", queue=name) == 3
        getattr(worker, name).clear()
        assert _sample("eldercare_ingest_queue", queue=name) == 0
    worker._storing["bulk"] = 500  # a batch in its open transaction
    assert _sample("eldercare_ingest_queue", queue="storing") == 500


async def test_a_replica_that_stops_gracefully_leaves_the_shared_group(
    registry, settings, broker, db
):
    """A rolling restart or a scale-down must not leave a dormant member in the shared group
    that takes its turn at emergencies nobody reads (Mosquitto: shared subscriptions)."""
    if not broker.shared_subscriptions:
        pytest.skip("the broker has no shared subscriptions (amqtt)")
    home = await make_home(registry)
    s = settings.model_copy(update={"mqtt_url": broker.url, "mqtt_shared": broker.shared})
    leaving_id = f"ingest-leaving-{uuid.uuid4().hex[:6]}"
    stops = [asyncio.Event(), asyncio.Event()]
    staying = IngestWorker(s, client_id="ingest-test", only="urgent")
    leaving = IngestWorker(s, client_id=leaving_id, only="urgent")
    tasks = [asyncio.create_task(w.run(e)) for w, e in zip((staying, leaving), stops, strict=True)]
    try:
        for worker in (staying, leaving):
            assert await asyncio.to_thread(worker.subscribed.wait, 15)
        stops[1].set()  # SIGTERM to one replica
        await asyncio.wait_for(tasks[1], 30)
        pub = publisher(broker.port)
        for i in range(20):
            pub.publish(*msg(home, "btn", "emergency", msg_id=f"rr-{i}"), qos=1).wait_for_publish(5)
        pub.loop_stop()
        await eventually(
            lambda: db.fetchval(
                "SELECT count(*) = 20 FROM telemetry.events WHERE gateway_id = $1 "
                "AND msg_id LIKE 'rr-%'",
                home["gateway"],
            ),
            within=30,
        )
    finally:
        for e in stops:
            e.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        # the departed replica's session: cleared, so it cannot linger in later tests
        gone = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{leaving_id}-urgent")
        gone.connect("127.0.0.1", broker.port)
        gone.disconnect()
