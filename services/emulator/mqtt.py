"""MQTT for many gateways: one paho client per gateway, all driven by one I/O thread.

A thread per client (paho's ``loop_start``) does not scale to thousands of homes, so the
clients run on paho's external-loop API (``loop_read``/``loop_write``/``loop_misc``) under a
single ``selectors`` loop. The caller's thread only calls ``publish``, which paho makes
thread-safe; everything else (connect, reconnect, dropout) is handed to the I/O thread,
which owns the sockets.

Each gateway sets a retained last will ``offline`` on its status topic and publishes
``online`` retained once connected, as the telemetry contract asks. ``dropout`` shuts the
socket down without a DISCONNECT packet, so the broker publishes the will.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from services.emulator.options import MqttTarget
from services.emulator.payloads import status_topic

MAX_INFLIGHT = 1000  # QoS 1 messages awaiting PUBACK per client (paho's default is 20)
KEEPALIVE_S = 30
RETRY_S = 1.0


@dataclass
class Credentials:
    """What the registry returns for a gateway, shown once at registration."""

    client_id: str
    username: str | None = None
    password: str | None = None


class Counters:
    """Shared between the caller's thread and the I/O thread (hence the lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0
        self.acked = 0
        self.errors = 0
        self.last_error: str | None = None

    def add(self, name: str, n: int = 1, error: str | None = None) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)
            if error:
                self.last_error = error


class Link:
    """One gateway's connection."""

    def __init__(self, gateway_id: str, creds: Credentials, pool: Pool) -> None:
        self.gateway_id = gateway_id
        self.pool = pool
        self.connected = threading.Event()
        self.wanted = False  # should be connected (False after a dropout, until reconnect)
        self.ever_connected = False
        # A dropout asked for before CONNACK: a gateway drops off the air only once it is on it.
        self.drop_pending = False
        self.dropping = False  # our own dropout in progress: not an error, no retry
        self.status_topic = status_topic(gateway_id)
        self.status_mids: set[int] = set()  # our own status publishes: not counted as sent
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=creds.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if creds.username:
            c.username_pw_set(creds.username, creds.password)
        c.will_set(self.status_topic, b"offline", qos=1, retain=True)
        c.max_inflight_messages_set(MAX_INFLIGHT)
        c.max_queued_messages_set(0)  # unlimited: the runner paces, the broker pushes back
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_socket_open = pool._on_socket_open
        c.on_socket_close = pool._on_socket_close
        # No-op write callbacks stop paho writing from the caller's thread; the pool watches
        # want_write() itself.
        c.on_socket_register_write = _ignore
        c.on_socket_unregister_write = _ignore
        c.user_data_set(self)
        self.client = c

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.pool.counters.add("errors", error=f"{self.gateway_id}: connect {reason_code}")
            return
        sock = client.socket()
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._status(b"online")
        self.ever_connected = True
        self.connected.set()
        if self.drop_pending:
            self.pool.call(self._drop)  # not from inside paho's loop_read

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if self.wanted and not self.dropping:  # not a dropout or a shutdown we asked for
            self.pool.counters.add("errors", error=f"{self.gateway_id}: lost ({reason_code})")
            self.pool.later(RETRY_S, self._connect)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if mid in self.status_mids:
            self.status_mids.discard(mid)
        else:
            self.pool.counters.add("acked")

    def _status(self, payload: bytes) -> None:
        self.status_mids.add(self.client.publish(self.status_topic, payload, 1, True).mid)

    # --- run on the I/O thread -----------------------------------------------------------

    def _connect(self) -> None:
        if not self.wanted or self.client.socket() is not None:
            return
        target = self.pool.target
        try:
            if self.ever_connected:
                self.client.reconnect()
            else:
                self.client.connect(target.host, target.port, keepalive=KEEPALIVE_S)
        except OSError as exc:
            self.pool.counters.add("errors", error=f"{self.gateway_id}: {exc}")
            self.pool.later(RETRY_S, self._connect)
            return
        self.pool.mark_dirty(self)

    def _drop(self) -> None:
        sock = self.client.socket()
        if sock is None:
            self.drop_pending = False
            return
        if not self.connected.is_set():
            # Still waiting for CONNACK (a loaded broker, a dropout forced at the start):
            # dropping now would cut a connection that never was, and no will would fire.
            self.drop_pending = True
            return
        self.drop_pending = False
        if self.client.want_write():
            self.client.loop_write()  # what the gateway sent before it fell silent is sent
        self.dropping = True
        try:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # FIN without DISCONNECT: the will fires
            self.client.loop_read()  # paho sees EOF, closes and forgets the socket
        finally:
            self.dropping = False
        if self.wanted:  # the reconnect was asked for while the dropout waited for CONNACK
            self.pool.later(0.0, self._connect)

    def _goodbye(self) -> None:
        if self.client.socket() is not None:
            self._status(b"offline")
            self.client.disconnect()
            self.pool.mark_dirty(self)


def _ignore(*_args) -> None:
    return None


class Pool:
    """All gateways' clients and the I/O thread that drives them."""

    def __init__(self, target: MqttTarget, counters: Counters | None = None) -> None:
        self.target = target
        self.counters = counters or Counters()
        self.links: dict[str, Link] = {}
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._dirty: set[Link] = set()
        self._dirty_lock = threading.Lock()
        self._timers: list[tuple[float, Callable[[], None]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="emulator-mqtt", daemon=True)
        self._thread.start()

    # --- caller's thread -------------------------------------------------------------------

    def add(self, gateway_id: str, creds: Credentials | None = None) -> Link:
        creds = creds or Credentials(client_id=gateway_id)
        if creds.username is None and self.target.username:
            creds = Credentials(creds.client_id, self.target.username, self.target.password)
        link = Link(gateway_id, creds, self)
        self.links[gateway_id] = link
        return link

    def connect(self, gateway_id: str) -> None:
        link = self.links[gateway_id]
        link.wanted = True
        self.call(link._connect)

    def dropout(self, gateway_id: str) -> None:
        link = self.links[gateway_id]
        link.wanted = False
        self.call(link._drop)

    def publish(self, gateway_id: str, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        link = self.links[gateway_id]
        info = link.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: queued
            self.counters.add("errors", error=f"{gateway_id}: publish {mqtt.error_string(info.rc)}")
            return
        self.counters.add("sent")
        self.mark_dirty(link)

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for link in self.links.values():
            if not link.connected.wait(max(deadline - time.monotonic(), 0)):
                return False
        return True

    def in_flight(self) -> int:
        return sum(len(link.client._out_messages) for link in self.links.values())

    def close(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for PUBACKs, announce ``offline`` and disconnect cleanly."""
        deadline = time.monotonic() + timeout
        while self.in_flight() and time.monotonic() < deadline:
            time.sleep(0.02)
        for link in self.links.values():
            link.wanted = False
            self.call(link._goodbye)
        while time.monotonic() < deadline and any(
            link.client.socket() is not None for link in self.links.values()
        ):
            time.sleep(0.02)
        self._stop.set()
        self._wake()
        self._thread.join(timeout=2)

    def call(self, fn: Callable[[], None]) -> None:
        self._commands.put(fn)
        self._wake()

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        self._timers.append((time.monotonic() + delay, fn))  # only from the I/O thread

    def mark_dirty(self, link: Link) -> None:
        with self._dirty_lock:
            first = not self._dirty
            self._dirty.add(link)
        if first:
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    # --- I/O thread ------------------------------------------------------------------------

    def _on_socket_open(self, client, link: Link, sock) -> None:
        self._sel.register(sock, selectors.EVENT_READ, link)

    def _on_socket_close(self, client, link: Link, sock) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(sock)

    def _interest(self, link: Link) -> None:
        sock = link.client.socket()
        if sock is None:
            return
        events = selectors.EVENT_READ
        if link.client.want_write():
            events |= selectors.EVENT_WRITE
        with contextlib.suppress(KeyError, ValueError):
            if self._sel.get_key(sock).events != events:
                self._sel.modify(sock, events, link)

    def _loop(self) -> None:
        next_misc = time.monotonic() + 1
        while not self._stop.is_set():
            for key, mask in self._sel.select(timeout=0.2):
                link = key.data
                if link is None:
                    with contextlib.suppress(BlockingIOError):
                        while self._wake_r.recv(4096):
                            pass
                    continue
                if mask & selectors.EVENT_READ:
                    link.client.loop_read()
                if mask & selectors.EVENT_WRITE:
                    link.client.loop_write()
                self._interest(link)
            while not self._commands.empty():
                self._commands.get()()
            with self._dirty_lock:
                dirty, self._dirty = self._dirty, set()
            for link in dirty:
                if link.client.want_write():
                    link.client.loop_write()
                self._interest(link)
            now = time.monotonic()
            if self._timers:
                due = [t for t in self._timers if t[0] <= now]
                self._timers = [t for t in self._timers if t[0] > now]
                for _, fn in due:
                    fn()
            if now >= next_misc:
                next_misc = now + 1
                for link in list(self.links.values()):
                    link.client.loop_misc()
                    self._interest(link)  # safety net for a missed write wake-up
        for link in self.links.values():
            sock = link.client.socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()
