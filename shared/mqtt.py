"""paho-mqtt clients configured the way this platform needs them."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None


def parse_url(url: str) -> BrokerAddress:
    """``mqtt://user:pass@host:port`` (``tcp://`` accepted too)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
        raise ValueError(f"not an MQTT URL: {url!r}")
    return BrokerAddress(
        host=parsed.hostname,
        port=parsed.port or 1883,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
    )


def set_nodelay(client: mqtt.Client) -> None:
    """paho leaves Nagle on: a PUBACK then waits for the peer's delayed ACK (~40 ms)."""
    sock = client.socket()
    if sock is not None and hasattr(sock, "setsockopt"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def new_client(
    client_id: str, address: BrokerAddress, *, clean_session: bool = True
) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    # paho's window limits only what this client publishes. What it *receives* in flight is
    # the broker's max_inflight_messages (shared.config.MQTT_MAX_INFLIGHT), MQTT 3.1.1 having
    # no receive maximum for the client to announce.
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    return client
