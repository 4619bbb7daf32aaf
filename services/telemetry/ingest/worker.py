"""The ingest worker: MQTT in, PostgreSQL out, an ack only after the commit.

Two MQTT links: ``urgent`` (emergency, fall, gateway status; its own connection and shared
group, so an emergency never queues behind a bulk backlog at the broker) and ``bulk``
(everything else, including batches — an emergency inside a batch is still taken first).
Each feeds an asyncio consumer: urgent messages are committed one by one, at once; bulk ones
in batches (by size or ``ingest_flush_ms``). ``--only urgent|bulk`` splits them into two
processes so that emergency latency never depends on the bulk load.

Acks are sent after the transaction commits, and the broker sessions are persistent
(clean_session=False), so a worker killed at any point loses nothing: what was not acked is
redelivered, and ``telemetry.seen`` drops what was already stored.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import paho.mqtt.client as mqtt
from prometheus_client import Counter, Gauge

from services.telemetry import contract
from services.telemetry.alerts import lifecycle
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
SUBSCRIBED = Gauge("eldercare_ingest_subscribed", "1 while the link is subscribed", ["link"])
URGENT_SUFFIXES = (*(f"/{e}" for e in contract.URGENT), "/status")
URGENT_FILTERS = (
    *(f"eldercare/v1/+/+/{e}" for e in sorted(contract.URGENT)),
    "eldercare/v1/+/status",
)
_URGENT_MARKERS = tuple(f'"{e}"'.encode() for e in contract.URGENT)
SAFETY_NET_DELAY_S = 1.0  # a bulk-only process takes urgent topics up after this
RETRY_LIMIT = 3  # attempts at one message before it is set aside as unprocessable

# Errors that say something about the message, not about the database's health.
DATA_ERRORS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.SyntaxOrAccessError,
    ValueError,
    TypeError,
    LookupError,
    ArithmeticError,
    AttributeError,
    RecursionError,
)


def is_urgent(topic: str, payload: bytes) -> bool:
    """Emergencies, falls and gateway status go first and are never shed — also when a
    gateway puts an emergency into a batch (a cheap byte check, no JSON parsing here)."""
    if topic.endswith(URGENT_SUFFIXES):
        return True
    return topic.endswith("/batch") and any(m in payload for m in _URGENT_MARKERS)


@dataclass
class Link:
    """One MQTT connection of the worker. Urgent topics have their own, so an emergency
    never waits behind a flood of vitals queued at the broker for the bulk connection."""

    name: str
    client_id: str
    shared_filters: tuple[str, ...]
    plain_filters: tuple[str, ...]
    client: mqtt.Client | None = None
    generation: int = 0  # bumped per connection: packet ids restart with each one
    subscribed: threading.Event = field(default_factory=threading.Event)


class IngestWorker:
    def __init__(
        self, settings: Settings, *, client_id: str | None = None, only: str | None = None
    ) -> None:
        """``only="urgent"`` runs just the emergency path (a process of its own keeps its
        latency free of bulk work); ``only="bulk"`` everything else — and, as a safety net,
        urgent topics too: storing is idempotent, so both processes may see one message."""
        self.settings = settings
        self.only = only
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
        self.deferred: deque[Message] = deque()  # urgent copies a bulk-only process keeps
        self.shared: bool | None = settings.mqtt_shared
        self.stored = 0
        links = {
            "bulk": Link("bulk", self.client_id, (SHARED_TOPIC,), (PLAIN_TOPIC,)),
            "urgent": Link(
                "urgent",
                f"{self.client_id}-urgent",
                tuple(f"$share/ingest-urgent/{f}" for f in URGENT_FILTERS),
                URGENT_FILTERS,
            ),
        }
        self.links = {name: link for name, link in links.items() if only in (None, name)}
        self.subscribed = threading.Event()  # both links are subscribed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._urgent_ready = asyncio.Event()
        self._bulk_ready = asyncio.Event()

    # --- paho thread -------------------------------------------------------------------
    def _on_connect(self, client, link: Link, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the %s connection: %s", link.name, reason_code)
            return
        set_nodelay(client)
        link.generation += 1
        filters = link.plain_filters if self.shared is False else link.shared_filters
        client.subscribe([(f, 1) for f in filters])
        log.info(
            "%s link connected to %s:%s as %s, subscribing to %s",
            link.name,
            self.address.host,
            self.address.port,
            link.client_id,
            ", ".join(filters),
        )

    def _on_subscribe(self, client, link: Link, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            if self.shared is not False:
                log.warning(
                    "broker refused shared subscriptions; falling back to plain ones "
                    "(run one ingest process only)"
                )
                self.shared = False
            client.subscribe([(f, 1) for f in link.plain_filters])
            return
        link.subscribed.set()
        SUBSCRIBED.labels(link.name).set(1)
        if all(lk.subscribed.is_set() for lk in self.links.values()):
            self.subscribed.set()

    def _on_message(self, client, link: Link, msg: mqtt.MQTTMessage) -> None:
        assert self._loop is not None
        if link.name == "bulk" and self.only is None and msg.topic.endswith(URGENT_SUFFIXES):
            client.ack(msg.mid, msg.qos)  # this process's urgent link holds its own copy
            return
        item = Message(
            msg.topic, msg.payload, datetime.now(UTC), msg.mid, msg.qos, link.generation, link.name
        )
        if self.only == "bulk" and msg.topic.endswith(URGENT_SUFFIXES):
            # The urgent process stores these; this copy is the safety net. Taken up a little
            # later, it finds the message already stored — instead of racing the urgent
            # process for the same row and making it wait on this busier process.
            self.deferred.append(item)
            return
        if link.name == "urgent" or is_urgent(msg.topic, msg.payload):
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

    def _on_disconnect(self, client, link: Link, flags, reason_code, properties) -> None:
        SUBSCRIBED.labels(link.name).set(0)
        if reason_code != 0:
            log.warning("%s link disconnected (%s); paho reconnects", link.name, reason_code)

    # --- asyncio side ------------------------------------------------------------------
    def _connect(self, link: Link) -> None:
        client = new_client(link.client_id, self.address, clean_session=False)
        client.user_data_set(link)
        client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(0.2, 5)
        link.client = client
        client.connect_async(self.address.host, self.address.port, keepalive=30)
        client.loop_start()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        pool = await asyncpg.create_pool(
            plain_url(self.settings.database_url),
            min_size=2,
            max_size=4,
            server_settings={"timezone": "UTC"},  # timestamps the database formats are UTC
        )
        for link in self.links.values():
            self._connect(link)
        tasks = [
            asyncio.create_task(supervised("urgent", lambda: self._consume(pool, urgent=True)))
        ]
        if "bulk" in self.links:
            tasks.append(
                asyncio.create_task(supervised("bulk", lambda: self._consume(pool, urgent=False)))
            )
        if self.only == "bulk":
            tasks.append(
                asyncio.create_task(supervised("deferred", lambda: self._consume_deferred(pool)))
            )
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for link in self.links.values():
                if link.client is not None:
                    link.client.disconnect()
                    link.client.loop_stop()
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

    async def _consume_deferred(self, pool: asyncpg.Pool) -> None:
        """The bulk-only safety net: urgent copies, taken up once the urgent process had
        its chance (they arrive in order, so the due ones are at the left)."""
        while True:
            due = []
            cutoff = datetime.now(UTC) - timedelta(seconds=SAFETY_NET_DELAY_S)
            while self.deferred and self.deferred[0].received_at <= cutoff:
                due.append(self.deferred.popleft())
            if due:
                await self._commit(pool, due)
            await asyncio.sleep(0.2)

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
        for item in batch:
            link = self.links[item.link]
            # An ack for a message of an earlier connection is dropped: the broker redelivers
            # it, and its packet id may already name another message.
            if item.qos and link.client is not None and item.generation == link.generation:
                link.client.ack(item.mid, item.qos)

    async def _quarantine(self, pool: asyncpg.Pool, item: Message) -> None:
        log.error("message on %s could not be processed; dead-lettered", item.topic)
        DEAD_LETTERS.labels("processing_error").inc()
        delay = 0.1
        alert = is_urgent(item.topic, item.payload) and not item.topic.endswith("/status")
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
                    if alert:
                        # Whatever broke, a person must still hear about a possible emergency.
                        parts = item.topic.split("/")
                        await lifecycle.raise_alert(
                            conn,
                            kind="unprocessed_emergency",
                            severity="critical",
                            subject=parts[2] if len(parts) > 2 else "unknown",
                            at=item.received_at,
                            gateway_id=parts[2] if len(parts) > 2 else None,
                            details={"topic": item.topic[:200]},
                        )
                return
            except DATA_ERRORS:
                if not alert:  # the plain dead-letter insert refused: log it whole, move on
                    log.exception("could not dead-letter %s %r", item.topic, item.payload[:500])
                    return
                log.exception("raising the unprocessed-emergency alert failed; dead letter only")
                alert = False
            except Exception as exc:
                log.warning("dead-lettering failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
