"""The issue's end-to-end check: emulator homes registered through the registry, an injected
emergency becomes exactly one open critical alert, a redelivery adds nothing, garbage lands
in dead letters and the worker keeps going — real broker, real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import asyncpg
import orjson
import paho.mqtt.client as mqtt

from services.emulator.options import EmulatorOptions
from services.emulator.register import register_homes
from services.emulator.runner import emulate
from tests.integration.telemetry_helpers import running
from tests.waiting import eventually


async def test_emulated_emergency_to_one_alert(registry, settings, broker, recorder):
    options = EmulatorOptions(
        homes=3,
        seed=9090,
        speed=300.0,
        duration=8.0,
        garbage_rate=0.05,
        incident_rate=0.0,
        force_incidents=("emergency",),
        mqtt_url=broker.url,
        progress=False,
        start=datetime.now(UTC),
    )
    homes = await register_homes(
        options, client=registry.client, token=registry.token("admin", sub="emulator-e2e")
    )
    gateways = sorted(homes)
    db = await asyncpg.connect(settings.database_url)
    try:
        async with running(settings, broker, recorder):
            stats = await asyncio.to_thread(emulate, options, stop=threading.Event(), out=None)
            assert stats is not None

            async def one_alert_per_home():
                rows = await db.fetch(
                    "SELECT gateway_id, status, severity FROM telemetry.alerts "
                    "WHERE kind = 'emergency' AND gateway_id = ANY($1)",
                    gateways,
                )
                return rows if len(rows) >= len(gateways) else None

            alerts = await eventually(one_alert_per_home, within=30)
            assert sorted(r["gateway_id"] for r in alerts) == gateways
            assert {(r["severity"]) for r in alerts} == {"critical"}
            dead = await eventually(
                lambda: db.fetchval(
                    "SELECT count(*) FROM telemetry.dead_letters WHERE "
                    + " OR ".join(f"topic LIKE '%{g}%'" for g in gateways)
                ),
                within=30,
            )
            assert dead > 0
            # redeliver one emergency exactly as it was sent: nothing new
            row = await db.fetchrow(
                "SELECT device_id, gateway_id, msg_id, device_ts, data FROM telemetry.events "
                "WHERE event = 'emergency' AND gateway_id = $1",
                gateways[0],
            )
            payload = orjson.dumps(
                {
                    "msg_id": row["msg_id"],
                    "ts": row["device_ts"].isoformat(),
                    **orjson.loads(row["data"]),
                }
            )
            pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-redeliver")
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            topic = f"eldercare/v1/{row['gateway_id']}/{row['device_id']}/emergency"
            pub.publish(topic, payload, qos=1).wait_for_publish(5)
            # a marker after it proves the redelivery was processed, not just in flight
            marker = {"msg_id": "marker-1", "ts": datetime.now(UTC).isoformat(), "battery": 90}
            pub.publish(
                f"eldercare/v1/{row['gateway_id']}/{row['device_id']}/heartbeat",
                orjson.dumps(marker),
                qos=1,
            ).wait_for_publish(5)
            pub.loop_stop()
            await eventually(
                lambda: db.fetchval(
                    "SELECT count(*) FROM telemetry.events WHERE msg_id = 'marker-1' "
                    "AND device_id = $1",
                    row["device_id"],
                )
            )
        emergencies = await db.fetchval(
            "SELECT count(*) FROM telemetry.events WHERE event = 'emergency' AND device_id = $1",
            row["device_id"],
        )
        alert = await db.fetchrow(
            "SELECT occurrences, status FROM telemetry.alerts WHERE kind = 'emergency' "
            "AND gateway_id = $1",
            gateways[0],
        )
        # the worker kept storing after garbage
        after_garbage = await db.fetchval(
            "SELECT count(*) FROM telemetry.events e WHERE e.gateway_id = ANY($1) AND "
            "e.received_at > (SELECT min(received_at) FROM telemetry.dead_letters d "
            "WHERE d.topic LIKE '%' || $2 || '%')",
            gateways,
            gateways[0],
        )
    finally:
        await db.close()
    assert emergencies == 1
    assert alert["occurrences"] == 1 and alert["status"] in ("open", "dispatched")
    assert after_garbage > 0
