"""The test infrastructure itself: a real broker, OpenAPI completeness."""

from __future__ import annotations

import threading
import time
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


def _client(port: int, client_id: str, **kw) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, **kw)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_retained_messages_go_only_to_subscriptions_that_match_them(broker):
    """A client gets the retained messages of *its* filters, never those another client's
    filter matches (amqtt 0.12 sent every matching one on connect; see shared/amqtt_broker)."""
    other_gw = f"eldercare/v1/gw-{uuid.uuid4().hex[:8]}/status"
    watcher_ready = threading.Event()
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-watcher")
    watcher.on_subscribe = lambda *a: watcher_ready.set()
    watcher.on_connect = lambda c, u, f, rc, p: c.subscribe("eldercare/v1/#", qos=1)
    watcher.connect("127.0.0.1", broker.port)
    watcher.loop_start()
    publisher = _client(broker.port, "t-retainer")
    try:
        assert watcher_ready.wait(10)
        publisher.publish(other_gw, b"offline", qos=1, retain=True).wait_for_publish(10)
        received: list[tuple[str, bytes]] = []
        subscribed = threading.Event()
        mine = f"eldercare/v1/gw-{uuid.uuid4().hex[:8]}"
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-newcomer")
        sub.on_message = lambda c, u, m: received.append((m.topic, m.payload))
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{mine}/#", qos=1)
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        try:
            assert subscribed.wait(10)
            publisher.publish(f"{mine}/btn-1/emergency", b"1", qos=1).wait_for_publish(10)
            # the publish is the last thing sent, so once it is here, anything stray is too
            assert eventually_true(lambda: (f"{mine}/btn-1/emergency", b"1") in received)
            assert received == [(f"{mine}/btn-1/emergency", b"1")]
        finally:
            sub.loop_stop()
            sub.disconnect()
    finally:
        publisher.publish(other_gw, b"", qos=1, retain=True).wait_for_publish(10)  # clear it
        publisher.loop_stop()
        watcher.loop_stop()
        watcher.disconnect()


def eventually_true(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


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
