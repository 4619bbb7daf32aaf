"""20 000 events with known ids while the ingest worker is killed (-9) and restarted twice:
afterwards the database holds every one of them exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime

import asyncpg
import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest

from shared.config import MQTT_MAX_INFLIGHT
from shared.embedded import free_port
from tests.integration.telemetry_helpers import make_home
from tests.waiting import eventually

TOTAL = 20_000
KILL_AT = (4_000, 11_000)


def start_worker(settings, broker, metrics_port: int = 0) -> subprocess.Popen:
    env = {
        **os.environ,
        "ELDERCARE_DATABASE_URL": settings.database_url,
        "ELDERCARE_MQTT_URL": broker.url,
        "ELDERCARE_MQTT_SHARED": "false" if broker.shared is False else "true",
        "ELDERCARE_LOG_LEVEL": "WARNING",
        "ELDERCARE_DATA_DIR": str(settings.data_dir),
        "ELDERCARE_JWT_SECRET": settings.jwt_secret,
        "ELDERCARE_INGEST_METRICS_PORT": str(metrics_port),
        # Crash safety, not overload: a restarted worker gets its backlog in one burst (up to
        # the broker's in-flight window), and none of it may be shed here — so the queue
        # bound sits above the window, which alone then bounds what the worker holds.
        "ELDERCARE_INGEST_QUEUE_MAX": str(2 * MQTT_MAX_INFLIGHT),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "ingest",
            "--client-id",
            "ingest-test",
            "--no-relay",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
async def test_kill_9_twice_loses_and_doubles_nothing(registry, settings, broker):
    if broker.kind != "mosquitto":
        pytest.skip(
            "needs a broker that keeps a crashed client's persistent session and "
            "redelivers its unacknowledged QoS 1 messages (Mosquitto, EMQX); "
            "amqtt, the demo broker, does not survive this test"
        )
    home = await make_home(registry)
    device = home["devices"]["vit"]
    topic = f"eldercare/v1/{home['gateway']}/{device}/vitals"
    db = await asyncpg.connect(settings.database_url)

    async def stored() -> int:
        return await db.fetchval(
            "SELECT count(*) FROM telemetry.events WHERE device_id = $1 AND msg_id LIKE 'r-%'",
            device,
        )

    metrics_port = free_port()
    worker = start_worker(settings, broker, metrics_port)
    published = threading.Event()

    def publish_all() -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="reliability-pub")
        client.max_inflight_messages_set(200)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        ts = datetime.now(UTC).isoformat()
        infos = []
        for i in range(TOTAL):
            body = {"msg_id": f"r-{i}", "ts": ts, "heart_rate": 60 + i % 30}
            infos.append(client.publish(topic, orjson.dumps(body), qos=1))
        for info in infos:
            info.wait_for_publish(60)
        client.loop_stop()
        published.set()

    try:
        # The worker is live once a probe goes through (probes published before its
        # subscription exists are simply not delivered, so keep sending fresh ones).
        probe_client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="probe-pub")
        probe_client.connect("127.0.0.1", broker.port)
        probe_client.loop_start()
        probes = iter(range(10_000))

        async def probe_stored() -> bool:
            body = {
                "msg_id": f"probe-{next(probes)}",
                "ts": datetime.now(UTC).isoformat(),
                "heart_rate": 70,
            }
            probe_client.publish(topic, orjson.dumps(body), qos=1)
            return bool(
                await db.fetchval(
                    "SELECT count(*) FROM telemetry.events WHERE device_id = $1", device
                )
            )

        await eventually(probe_stored, within=30, interval=0.2)
        probe_client.loop_stop()

        thread = threading.Thread(target=publish_all, daemon=True)
        thread.start()
        for threshold in KILL_AT:
            await eventually(lambda t=threshold: _at_least(stored, t), within=120)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            worker = start_worker(settings, broker, metrics_port)
        await eventually(lambda: _flag(published), within=180)
        await eventually(lambda: _at_least(stored, TOTAL), within=180)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert 'eldercare_ingest_events_total{event="vitals"}' in metrics
        assert "eldercare_ingest_shed_total{" not in metrics  # nothing was shed
        rows = await db.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT msg_id) AS distinct_ids, "
            "count(*) FILTER (WHERE msg_id ~ '^r-[0-9]+$') AS ours FROM telemetry.events "
            "WHERE device_id = $1 AND msg_id LIKE 'r-%'",
            device,
        )
        assert rows["n"] == rows["distinct_ids"] == rows["ours"] == TOTAL
    finally:
        worker.terminate()
        worker.wait(10)
        await db.close()


async def _at_least(count, n: int) -> bool:
    return await count() >= n


async def _flag(event: threading.Event) -> bool:
    return event.is_set()
