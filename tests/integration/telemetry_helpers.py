"""Registered homes and message builders for telemetry tests."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

import orjson

from services.telemetry.ingest.worker import IngestWorker
from services.telemetry.outbox.relay import Relay
from tests.integration.builders import make_bed, make_elder, make_org

KINDS = {
    "btn": "emergency_button",
    "vit": "vital_monitor",
    "pir": "motion_sensor",
    "bed": "bed_sensor",
    "fall": "fall_sensor",
    "door": "door_sensor",
}


async def make_home(registry, org: dict | None = None) -> dict:
    org = org or await make_org(registry)
    elder = await make_elder(registry)
    bed = await make_bed(registry, elder, org)
    gw = f"gw-{uuid.uuid4().hex[:10]}"
    r = await registry.post(
        "/v1/devices",
        {"device_id": gw, "kind": "gateway", "elder_id": elder["id"], "bed_id": bed["id"]},
    )
    assert r.status_code == 201, r.text
    home = {
        "gateway": gw,
        "elder_id": elder["id"],
        "bed_id": bed["id"],
        "mqtt": r.json()["mqtt"],
        "org": org,
        "devices": {},
    }
    for prefix, kind in KINDS.items():
        device_id = f"{prefix}-{gw}"
        r = await registry.post(
            "/v1/devices",
            {"device_id": device_id, "gateway_id": gw, "kind": kind, "elder_id": elder["id"]},
        )
        assert r.status_code == 201, r.text
        home["devices"][prefix] = device_id
    return home


def msg(
    home: dict,
    prefix: str,
    event: str,
    msg_id: str | None = None,
    ts: datetime | None = None,
    **fields,
) -> tuple[str, bytes]:
    device = home["devices"][prefix]
    body = {
        "msg_id": msg_id or uuid.uuid4().hex,
        "ts": (ts or datetime.now(UTC)).isoformat(),
        **fields,
    }
    return f"eldercare/v1/{home['gateway']}/{device}/{event}", orjson.dumps(body)


@contextlib.asynccontextmanager
async def running(settings, broker, recorder, client_id="ingest-test"):
    """A worker and a relay, yielded once the worker's subscription is in place.

    Every test uses the same client id: the session is persistent, and a second id would
    leave a dormant member in the shared-subscription group that takes its turn at messages.
    """
    stop = asyncio.Event()
    s = settings.model_copy(
        update={"mqtt_url": broker.url, "dispatch_url": recorder.url, "mqtt_shared": broker.shared}
    )
    worker = IngestWorker(s, client_id=client_id)
    tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(Relay(s).run(stop))]
    try:
        assert await asyncio.to_thread(worker.subscribed.wait, 15), "worker never subscribed"
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
