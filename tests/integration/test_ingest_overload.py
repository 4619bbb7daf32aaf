"""Overload with the broker settings we ship: the worker's bulk queue fills, the worker — not
the broker — sheds non-urgent messages, and every emergency is alerted meanwhile.

The bulk store is held shut (a slow database, from the worker's point of view) while more
messages arrive than the queue holds. Before the in-flight window was made larger than the
queue, the broker stopped at 1 000 unacknowledged messages and the queue never filled.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import orjson
import paho.mqtt.client as mqtt
import pytest
from prometheus_client import REGISTRY

from services.telemetry.ingest.worker import IngestWorker, is_urgent
from shared.config import MQTT_MAX_INFLIGHT, Settings
from tests.integration.telemetry_helpers import make_home, msg
from tests.waiting import eventually


def shed_total() -> float:
    return sum(
        s.value
        for metric in REGISTRY.collect()
        if metric.name == "eldercare_ingest_shed"
        for s in metric.samples
        if s.name == "eldercare_ingest_shed_total"
    )


@pytest.fixture
async def db(database_url):
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def test_overload_sheds_vitals_in_the_worker_and_alerts_every_emergency(
    registry, settings, broker, db
):
    shipped = Settings()
    assert shipped.ingest_queue_max + shipped.ingest_batch_max < MQTT_MAX_INFLIGHT
    homes = [await make_home(registry) for _ in range(5)]
    tag = uuid.uuid4().hex[:6]
    vit = homes[0]
    extra = 1_500
    total = shipped.ingest_queue_max + shipped.ingest_batch_max + extra
    vitals = [msg(vit, "vit", "vitals", msg_id=f"o-{tag}-{i}", heart_rate=70) for i in range(total)]
    now = datetime.now(UTC).isoformat()
    emergencies = [msg(h, "btn", "emergency", msg_id=f"sos-{tag}") for h in homes[1:3]]
    in_batches = [  # emergencies inside gateway batches: on the bulk link, never shed
        (
            f"eldercare/v1/{h['gateway']}/batch",
            orjson.dumps(
                [
                    {
                        "device_id": h["devices"]["vit"],
                        "event": "vitals",
                        "msg_id": f"bv-{tag}",
                        "ts": now,
                        "spo2": 97,
                    },
                    {
                        "device_id": h["devices"]["fall"],
                        "event": "fall",
                        "msg_id": f"bf-{tag}",
                        "ts": now,
                        "confidence": 0.9,
                    },
                ]
            ),
        )
        for h in homes[3:5]
    ]

    stop = asyncio.Event()
    s = settings.model_copy(update={"mqtt_url": broker.url, "mqtt_shared": broker.shared})
    assert (s.ingest_queue_max, s.mqtt_max_inflight) == (
        shipped.ingest_queue_max,
        MQTT_MAX_INFLIGHT,
    )
    worker = IngestWorker(s, client_id="ingest-test")
    gate = asyncio.Event()  # the bulk store, held shut
    commit = worker.pipeline.commit

    async def slow_bulk(conn, batch):
        if any(not is_urgent(m.topic, m.payload) for m in batch):
            await gate.wait()
        return await commit(conn, batch)

    worker.pipeline.commit = slow_bulk  # type: ignore[method-assign]
    shed_before = shed_total()
    task = asyncio.create_task(worker.run(stop))
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{tag}")
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        assert await asyncio.to_thread(worker.subscribed.wait, 15)
        infos = [pub.publish(t, p, qos=1) for t, p in vitals[: total // 2]]
        infos += [pub.publish(t, p, qos=1) for t, p in emergencies + in_batches]
        infos += [pub.publish(t, p, qos=1) for t, p in vitals[total // 2 :]]
        await asyncio.to_thread(lambda: [i.wait_for_publish(60) for i in infos])
        # Every message reaches the worker: held (one batch + the full queue) or shed.
        await eventually(
            lambda: _true(shed_total() - shed_before + len(worker.bulk) >= total - 500),
            within=60,
        )
        assert len(worker.bulk) == s.ingest_queue_max
        # The emergencies did not wait for the overload to pass: alerted while it lasts.
        alerts = await eventually(
            lambda: _count(
                db.fetch(
                    "SELECT kind, elder_id FROM telemetry.alerts WHERE gateway_id = ANY($1)",
                    [h["gateway"] for h in homes[1:]],
                ),
                4,
            ),
            within=30,
        )
        assert not gate.is_set()
        assert sorted(a["kind"] for a in alerts) == ["emergency", "emergency", "fall", "fall"]
        assert {str(a["elder_id"]) for a in alerts} == {h["elder_id"] for h in homes[1:]}
        gate.set()

        async def accounted() -> bool:
            stored = await db.fetchval(
                "SELECT count(*) FROM telemetry.events WHERE msg_id LIKE $1", f"o-{tag}-%"
            )
            return stored + (shed_total() - shed_before) == total

        # What was not stored was shed, and counted: nothing else went missing.
        await eventually(accounted, within=60)
    finally:
        gate.set()
        pub.loop_stop()
        pub.disconnect()
        stop.set()
        await asyncio.wait_for(task, 15)
    assert shed_total() - shed_before >= extra  # the worker shed: the queue really filled
    assert (
        await db.fetchval(
            "SELECT count(*) FROM telemetry.events WHERE msg_id = ANY($1)",
            [f"bv-{tag}", f"bf-{tag}"],
        )
        == 4
    )  # the vitals travelling with an emergency were kept too


async def _true(value) -> bool:
    return bool(value)


async def _count(rows, n: int):
    result = await rows
    return result if len(result) >= n else None
