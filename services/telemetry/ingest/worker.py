"""The ingest worker: MQTT in, PostgreSQL out, an ack only after the commit.

One paho network thread receives; two asyncio consumers write. Emergencies and falls go to
an urgent queue that a dedicated consumer commits one by one, at once; everything else is
written in batches (by size or ``ingest_flush_ms``). Acks are sent after the transaction
commits, and the broker session is persistent (clean_session=False), so a worker killed at
any point loses nothing: what was not acked is redelivered, and ``telemetry.seen`` drops
what was already stored.

Overload: the bulk queue is bounded. When it is full, non-urgent messages are shed (acked
unstored, counted in ``eldercare_ingest_shed_total``); urgent ones never are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections import deque
from datetime import UTC, datetime

import asyncpg
import paho.mqtt.client as mqtt
from prometheus_client import Counter, Gauge

from services.telemetry import contract
from services.telemetry.alerts import store
from services.telemetry.ingest.pipeline import DEAD_LETTERS, Message, Pipeline
from shared.config import Settings
from shared.db import plain_url
from shared.mqtt import BrokerAddress, new_client, parse_url, set_nodelay
from shared.tasks import supervised

log = logging.getLogger(__name__)

SHARED_TOPIC = "$share/ingest/eldercare/v1/#"
PLAIN_TOPIC = "eldercare/v1/#"
SHED = Counter("eldercare_ingest_shed_total", "messages shed under overload", ["event"])
QUEUE = Gauge("eldercare_ingest_queue", "messages waiting", ["queue"])
URGENT_SUFFIXES = (*(f"/{e}" for e in contract.URGENT), "/status")
_URGENT_MARKERS = tuple(f'"{e}"'.encode() for e in contract.URGENT)
RETRY_LIMIT = 3  # attempts at one message before it is set aside as unprocessable

# Errors that say something about the message, not about the database's health.
DATA_ERRORS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.SyntaxOrAccessError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
)


def is_urgent(topic: str, payload: bytes) -> bool:
    """Emergencies, falls and gateway status go first and are never shed — also when a
    gateway puts an emergency into a batch (a cheap byte check, no JSON parsing here)."""
    if topic.endswith(URGENT_SUFFIXES):
        return True
    return topic.endswith("/batch") and any(m in payload for m in _URGENT_MARKERS)


class IngestWorker:
    def __init__(self, settings: Settings, *, client_id: str | None = None) -> None:
        self.settings = settings
        self.address: BrokerAddress = parse_url(
            settings.mqtt_url or f"mqtt://127.0.0.1:{settings.mqtt_port}"
        )
        self.client_id = (
            client_id or settings.ingest_client_id or f"ingest-{socket.gethostname()}-{os.getpid()}"
        )
        self.batch_max = settings.ingest_batch_max
        self.flush_s = settings.ingest_flush_ms / 1000
        self.queue_max = settings.ingest_queue_max
        self.pipeline = Pipeline()
        self.urgent: deque[Message] = deque()
        self.bulk: deque[Message] = deque()
        self.subscribed = threading.Event()
        self.shared: bool | None = settings.mqtt_shared
        self.stored = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._urgent_ready = asyncio.Event()
        self._bulk_ready = asyncio.Event()
        self._client: mqtt.Client | None = None
        self._generation = 0

    # --- paho thread -------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        set_nodelay(client)
        # Packet ids restart with each connection: acks for older messages must not be sent
        # (the broker redelivers those, and the id may now name another message).
        self._generation += 1
        topic = PLAIN_TOPIC if self.shared is False else SHARED_TOPIC
        client.subscribe(topic, qos=1)
        log.info(
            "connected to %s:%s as %s, subscribing to %s",
            self.address.host,
            self.address.port,
            self.client_id,
            topic,
        )

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            if self.shared is not False:
                log.warning(
                    "broker refused the shared subscription %s; falling back to a plain "
                    "subscription (one ingest process only)",
                    SHARED_TOPIC,
                )
                self.shared = False
                client.subscribe(PLAIN_TOPIC, qos=1)
            return
        if self.shared is None:
            self.shared = True
        self.subscribed.set()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        item = Message(
            msg.topic, msg.payload, datetime.now(UTC), msg.mid, msg.qos, self._generation
        )
        assert self._loop is not None
        if is_urgent(msg.topic, msg.payload):
            self.urgent.append(item)
            self._loop.call_soon_threadsafe(self._urgent_ready.set)
            return
        if len(self.bulk) >= self.queue_max:
            SHED.labels(msg.topic.rsplit("/", 1)[-1][:16]).inc()
            client.ack(msg.mid, msg.qos)
            return
        self.bulk.append(item)
        if len(self.bulk) == 1 or len(self.bulk) == self.batch_max:
            self._loop.call_soon_threadsafe(self._bulk_ready.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code != 0:
            log.warning("disconnected from the broker (%s); paho reconnects", reason_code)

    # --- asyncio side ------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        pool = await asyncpg.create_pool(
            plain_url(self.settings.database_url), min_size=2, max_size=4
        )
        client = new_client(self.client_id, self.address, clean_session=False)
        client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(0.2, 5)
        self._client = client
        client.connect_async(self.address.host, self.address.port, keepalive=30)
        client.loop_start()
        tasks = [
            asyncio.create_task(supervised("urgent", lambda: self._consume(pool, urgent=True))),
            asyncio.create_task(supervised("bulk", lambda: self._consume(pool, urgent=False))),
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            client.disconnect()
            client.loop_stop()
            await pool.close()

    async def _consume(self, pool: asyncpg.Pool, *, urgent: bool) -> None:
        queue = self.urgent if urgent else self.bulk
        ready = self._urgent_ready if urgent else self._bulk_ready
        while True:
            if not queue:
                ready.clear()
                if not queue:
                    await ready.wait()
                continue
            if not urgent and len(queue) < self.batch_max:
                # Let a batch form: up to batch_max items or flush_s after the first one.
                deadline = queue[0].received_at.timestamp() + self.flush_s
                ready.clear()
                wait = deadline - time.time()
                if wait > 0 and len(queue) < self.batch_max:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ready.wait(), wait)
            batch = [
                queue.popleft() for _ in range(min(len(queue), 1 if urgent else self.batch_max))
            ]
            QUEUE.labels("urgent" if urgent else "bulk").set(len(queue))
            await self._commit(pool, batch)

    async def _commit(self, pool: asyncpg.Pool, batch: list[Message]) -> None:
        """Store ``batch`` and ack it. Never raises and never drops: database trouble is
        retried until it passes; a message that fails by itself is set aside (dead letter,
        and an alert if it was urgent) after ``RETRY_LIMIT`` attempts."""
        delay, attempts = 0.1, 0
        while True:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    outcome = await self.pipeline.process(conn, batch)
                self.stored += outcome.stored
                break
            except DATA_ERRORS:
                attempts += 1
                if len(batch) > 1:
                    log.exception("batch of %d failed; splitting it", len(batch))
                    half = len(batch) // 2
                    await self._commit(pool, batch[:half])
                    await self._commit(pool, batch[half:])
                    return
                if attempts >= RETRY_LIMIT:
                    await self._quarantine(pool, batch[0])
                    break
            except Exception as exc:  # the database, the network, the pool: wait and retry
                log.warning(
                    "storing %d message(s) failed (%s: %s); retrying in %.1fs",
                    len(batch),
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._ack(batch)

    def _ack(self, batch: list[Message]) -> None:
        client = self._client
        assert client is not None
        for item in batch:
            if item.qos and item.generation == self._generation:
                client.ack(item.mid, item.qos)

    async def _quarantine(self, pool: asyncpg.Pool, item: Message) -> None:
        log.error("message on %s could not be processed; dead-lettered", item.topic)
        DEAD_LETTERS.labels("processing_error").inc()
        delay = 0.1
        while True:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute(
                        "INSERT INTO telemetry.dead_letters (received_at, topic, payload, reason,"
                        " detail) VALUES ($1, $2, $3, 'processing_error', "
                        "'the pipeline raised; see the ingest logs')",
                        item.received_at,
                        item.topic,
                        item.payload,
                    )
                    if is_urgent(item.topic, item.payload) and not item.topic.endswith("/status"):
                        # Whatever broke, a person must still hear about a possible emergency.
                        parts = item.topic.split("/")
                        await store.raise_alert(
                            conn,
                            kind="unprocessed_emergency",
                            severity="critical",
                            subject=parts[2] if len(parts) > 2 else "unknown",
                            at=item.received_at,
                            gateway_id=parts[2] if len(parts) > 2 else None,
                            details={"topic": item.topic[:200]},
                        )
                return
            except Exception as exc:
                log.warning("dead-lettering failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
