"""The generated password file and ACL, enforced by a real Mosquitto.

Gateways are registered through the registry's API (credentials are shown once), the files
are generated from the database, and a broker started with them must: let a gateway publish
under its own prefix only, deliver to ``ingest`` (plain and shared subscription), refuse wrong
passwords and anonymous clients, and pick up new gateways on SIGHUP.

Mosquitto silently drops an unauthorised MQTT 3.1.1 publish (it still sends PUBACK), so
absence is proven with ordering: after the forbidden message the same client publishes an
allowed marker on the same connection, and the broker delivers one publisher's messages to a
subscription in order; once the marker has arrived, the forbidden message can no longer
arrive.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import stat
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.telemetry.broker_config import write_broker_config
from shared.embedded import EmbeddedBroker
from tests.integration.builders import make_bed, make_elder, make_org

mqtt = pytest.importorskip("paho.mqtt.client")

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
)
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="the mosquitto binary is not installed")

TIMEOUT = 10.0


@dataclass
class Client:
    """A paho 2.x client whose callbacks feed threading.Events."""

    name: str
    mqtt: object = None
    connected: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    reason: object = None
    granted: list = field(default_factory=list)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def received(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.messages)

    def wait_for(self, topic: str, payload: bytes, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while (topic, payload) not in self.messages:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name} never got {topic} {payload!r}; got {self.messages}"
                    )
                self.arrived.wait(left)


def connect(port: int, username: str | None, password: str | None, *, will: str | None = None):
    """Connect and wait for CONNACK; returns the Client (check ``.reason``)."""
    from paho.mqtt.client import CallbackAPIVersion, MQTTv311

    c = Client(name=username or "anonymous")
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{c.name}-{uuid.uuid4().hex[:8]}",
        protocol=MQTTv311,
    )
    client.reconnect_delay_set(30, 60)  # a refused client must not retry during the test
    if username is not None:
        client.username_pw_set(username, password)
    if will:
        client.will_set(will, b"offline", qos=1, retain=True)

    def on_connect(_client, _userdata, _flags, reason_code, _properties):
        if c.reason is None:
            c.reason = reason_code
        c.connected.set()

    def on_subscribe(_client, _userdata, _mid, reason_codes, _properties):
        c.granted = list(reason_codes)
        c.subscribed.set()

    def on_message(_client, _userdata, message):
        with c.arrived:
            c.messages.append((message.topic, message.payload))
            c.arrived.notify_all()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    c.mqtt = client
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    assert c.connected.wait(TIMEOUT), f"no CONNACK for {c.name}"
    return c


def subscribe(c: Client, topic: str) -> None:
    c.subscribed.clear()
    c.mqtt.subscribe(topic, qos=1)
    assert c.subscribed.wait(TIMEOUT), f"no SUBACK for {c.name} on {topic}"
    assert not any(rc.is_failure for rc in c.granted), f"{c.name} refused {topic}: {c.granted}"


def publish(c: Client, topic: str, payload: bytes) -> None:
    info = c.mqtt.publish(topic, payload, qos=1)
    info.wait_for_publish(TIMEOUT)
    assert info.is_published(), f"no PUBACK for {c.name} on {topic}"


def close(*clients: Client) -> None:
    for c in clients:
        c.mqtt.disconnect()
        c.mqtt.loop_stop()


def assert_refused(port: int, username: str | None, password: str | None) -> None:
    c = connect(port, username, password)
    try:
        assert c.reason is not None and c.reason.is_failure, (username, c.reason)
        # MQTT 3.1.1 CONNACK 4/5 → bad user name or password / not authorised
        assert c.reason.value in (134, 135), c.reason
    finally:
        close(c)


async def register_gateway(registry, elder: dict, bed: dict) -> dict:
    gw = f"gw-acl-{uuid.uuid4().hex[:8]}"
    r = await registry.post(
        "/v1/devices",
        {"device_id": gw, "kind": "gateway", "elder_id": elder["id"], "bed_id": bed["id"]},
    )
    assert r.status_code == 201, r.text
    creds = r.json()["mqtt"]
    assert creds["username"] == gw and creds["password"]
    return creds


def scenario(port: int, a: dict, b: dict, ingest_password: str, ops_password: str) -> None:
    gw_a, gw_b = a["username"], b["username"]
    ingest = connect(port, "ingest", ingest_password)
    shared = connect(port, "ingest", ingest_password)
    ops = connect(port, "ops", ops_password)
    # a gateway connects with its last will on its own status topic, as real gateways do
    gateway_a = connect(port, gw_a, a["password"], will=f"eldercare/v1/{gw_a}/status")
    gateway_b = connect(port, gw_b, b["password"])
    clients = [ingest, shared, ops, gateway_a, gateway_b]
    try:
        for c in clients:
            assert c.reason is not None and not c.reason.is_failure, (c.name, c.reason)
        subscribe(ingest, "eldercare/v1/#")
        subscribe(shared, "$share/ingest/eldercare/v1/#")
        subscribe(gateway_a, f"eldercare/v1/{gw_a}/cmd/#")
        # A also tries to listen to B; whatever the SUBACK says, nothing of B's may arrive
        gateway_a.subscribed.clear()
        gateway_a.mqtt.subscribe(f"eldercare/v1/{gw_b}/#", qos=1)
        assert gateway_a.subscribed.wait(TIMEOUT)

        own = (f"eldercare/v1/{gw_a}/btn-1/emergency", b'{"msg_id":"1","button":true}')
        publish(gateway_a, *own)
        ingest.wait_for(*own)
        shared.wait_for(*own)

        # A publishes under B's prefix (dropped), then an allowed marker on the same connection
        forbidden = (f"eldercare/v1/{gw_b}/dev/emergency", b'{"msg_id":"spoofed"}')
        publish(gateway_a, *forbidden)
        marker = (f"eldercare/v1/{gw_a}/btn-1/heartbeat", b'{"msg_id":"marker"}')
        publish(gateway_a, *marker)
        ingest.wait_for(*marker)
        shared.wait_for(*marker)
        for c in (ingest, shared):
            received = c.received()
            assert forbidden not in received, f"{c.name} got a spoofed message: {received}"
            assert received.index(own) < received.index(marker)
        # nor outside the tree
        stray = ("eldercare/v2/anything", b"x")
        publish(gateway_a, *stray)
        marker2 = (f"eldercare/v1/{gw_a}/btn-1/heartbeat", b'{"msg_id":"marker2"}')
        publish(gateway_a, *marker2)
        ingest.wait_for(*marker2)
        assert stray not in ingest.received()

        # ingest reads only: its publish is dropped (ordered before A's next marker)
        injected = (f"eldercare/v1/{gw_a}/btn-1/emergency", b'{"msg_id":"injected"}')
        publish(ingest, *injected)
        marker3 = (f"eldercare/v1/{gw_a}/btn-1/heartbeat", b'{"msg_id":"marker3"}')
        publish(gateway_a, *marker3)
        shared.wait_for(*marker3)
        assert injected not in shared.received()

        # B's own messages reach ingest, but not gateway A (it reads only its cmd topics):
        # an ops command to A, published after, arrives; B's message never does.
        from_b = (f"eldercare/v1/{gw_b}/bed-1/vitals", b'{"msg_id":"b1","heart_rate":70}')
        publish(gateway_b, *from_b)
        ingest.wait_for(*from_b)
        command = (f"eldercare/v1/{gw_a}/cmd/ping", b"ping")
        publish(ops, *command)
        gateway_a.wait_for(*command)
        assert from_b not in gateway_a.received()
        assert gateway_a.received() == [command]
        ingest.wait_for(*command)
    finally:
        close(*clients)

    assert_refused(port, gw_a, "wrong-" + a["password"])
    assert_refused(port, gw_a, b["password"])  # B's password is not A's
    assert_refused(port, "ingest", "not-the-ingest-password")
    assert_refused(port, None, None)  # anonymous
    assert_refused(port, "gw-never-registered", "whatever")


async def test_gateways_publish_only_under_their_own_prefix(registry, database_url, tmp_path):
    org = await make_org(registry)
    elder = await make_elder(registry)
    bed = await make_bed(registry, elder, org)
    a = await register_gateway(registry, elder, bed)
    b = await register_gateway(registry, elder, bed)
    ingest_password = secrets.token_urlsafe(16)
    ops_password = secrets.token_urlsafe(16)
    out = tmp_path / "mosquitto"

    passwd, acl = await write_broker_config(
        database_url, out, ingest_password=ingest_password, extra_users={"ops": ops_password}
    )
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600
    passwd_text, acl_text = passwd.read_text(), acl.read_text()
    for creds in (a, b):
        assert f"\n{creds['username']}:$7$" in "\n" + passwd_text
        assert creds["password"] not in passwd_text
        assert f"user {creds['username']}\ntopic write eldercare/v1/{creds['username']}/#\n" in (
            acl_text
        )
    assert ingest_password not in passwd_text and ops_password not in passwd_text

    broker = EmbeddedBroker(
        tmp_path / "broker",
        config_lines=["allow_anonymous false", f"password_file {passwd}", f"acl_file {acl}"],
    )
    assert broker.kind == "mosquitto"
    broker.start()
    try:
        await asyncio.to_thread(scenario, broker.port, a, b, ingest_password, ops_password)

        # A gateway registered later cannot connect until the files are regenerated and the
        # broker gets SIGHUP; then it can, without a restart.
        c = await register_gateway(registry, elder, bed)
        await asyncio.to_thread(assert_refused, broker.port, c["username"], c["password"])
        await write_broker_config(
            database_url, out, ingest_password=ingest_password, extra_users={"ops": ops_password}
        )
        pid = broker.process.pid
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while True:
            late = await asyncio.to_thread(connect, broker.port, c["username"], c["password"])
            await asyncio.to_thread(close, late)
            if not late.reason.is_failure:
                break
            assert time.monotonic() < deadline, f"not accepted after SIGHUP: {late.reason}"
            await asyncio.sleep(0.1)
        assert broker.process.poll() is None
    finally:
        broker.stop()
