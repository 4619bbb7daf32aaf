"""The test infrastructure itself: a real broker, OpenAPI completeness."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt


def test_broker_fixture_delivers_qos1(broker):
    received: list[bytes] = []
    got = threading.Event()
    subscribed = threading.Event()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-sub")
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_message = lambda c, u, m: (received.append(m.payload), got.set())
    prefix = f"eldercare/v1/gw-{uuid.uuid4().hex[:8]}"  # retained messages of others stay out
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/#", qos=1)
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-pub")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        pub.publish(f"{prefix}/btn-1/emergency", b'{"msg_id":"1"}', qos=1).wait_for_publish(10)
        pub.loop_stop()
        assert got.wait(10)
        assert received == [b'{"msg_id":"1"}']
    finally:
        sub.loop_stop()


async def test_openapi_documents_every_route_and_problem_responses(registry):
    spec = (await registry.client.get("/openapi.json")).json()
    assert (await registry.client.get("/docs")).status_code == 200
    for path in ("/v1/elders", "/v1/beds", "/v1/devices", "/v1/orgs/{org_id}/staff"):
        assert path in spec["paths"]
    create = spec["paths"]["/v1/beds"]["post"]
    assert create["responses"]["422"]["content"]["application/problem+json"]
    assert "201" in create["responses"]
    elder = spec["components"]["schemas"]["ElderCreate"]
    assert {"id_number", "hukou_region", "living_arrangement"} <= set(elder["required"])
