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

When storing fails, whose fault it is decides (``errors.py``): a value PostgreSQL refuses
(SQLSTATE 22, a check violation) is the message's — a batch is split until the message is
alone, and that one is dead-lettered. Anything else (a missing table, column or privilege,
a lost connection, a bug) is ours: the messages stay unacknowledged and are retried with
backoff until the store works, and ``/readyz`` says the ingest is failing to store
(``health.py``). An emergency or fall is not left waiting for that: after ``RETRY_LIMIT``
attempts it is set aside — dead letter plus a critical ``unprocessed_emergency`` alert, in
one transaction — and acked only once that has committed. Nor does any message wait behind
one that keeps failing: after ``RETRY_LIMIT`` attempts such a message is *parked* (still
unacknowledged) and retried on its own by the ``parked`` consumer, so a gateway status the
store refuses never holds up the emergencies after it, and one message tripping a bug never
stops a bulk queue.

Overload: the bulk queue is bounded (``ingest_queue_max`` messages). When it is full, the
oldest waiting non-urgent message is shed (acked unstored, counted in
``eldercare_ingest_shed_total``); urgent ones never are. This only works when the broker
lets more messages be in flight to the worker than the queue holds: Mosquitto's
``max_inflight_messages`` (``shared.config.MQTT_MAX_INFLIGHT``, the same value in
``deploy/mosquitto/mosquitto.conf`` and the embedded broker) must exceed
``ingest_queue_max + ingest_batch_max`` with room for urgent messages — below that the queue
can never fill, and the broker, which does not know an emergency from a heartbeat, decides
what overflows. Nothing is shed while storing fails (that is an outage, not overload): the
in-flight window then bounds what the worker holds, and the broker keeps the rest.
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
from services.telemetry.ingest.errors import describe, is_data_error, where
from services.telemetry.ingest.health import Health
from services.telemetry.ingest.pipeline import Message, Pipeline
from shared.config import Settings
from shared.db import plain_url
from shared.mqtt import BrokerAddress, new_client, parse_url, set_nodelay
from shared.tasks import supervised

log = logging.getLogger(__name__)

SHARED_TOPIC = "$share/ingest/eldercare/v1/#"
PLAIN_TOPIC = "eldercare/v1/#"
SHED = Counter("eldercare_ingest_shed_total", "messages shed under overload", ["event"])
QUEUE = Gauge(
    "eldercare_ingest_queue",
    "messages waiting (urgent, bulk, deferred safety-net copies) or being stored (storing)",
    ["queue"],
)
SUBSCRIBED = Gauge("eldercare_ingest_subscribed", "1 while the link is subscribed", ["link"])
URGENT_SUFFIXES = (*(f"/{e}" for e in contract.URGENT), "/status")
URGENT_FILTERS = (
    *(f"eldercare/v1/+/+/{e}" for e in sorted(contract.URGENT)),
    "eldercare/v1/+/status",
)
SAFETY_NET_DELAY_S = 1.0  # a bulk-only process takes urgent topics up after this
RETRY_LIMIT = 3  # failed attempts before an emergency is set aside with its alert
SPLIT_AFTER = 2  # failed attempts at a batch (not the data's fault) before it is split
MAX_BACKOFF_S = 10.0
LOG_EVERY_S = 30.0  # a failure that goes on is logged again this often, not per attempt
LEAVE_DRAIN_S = 15.0  # a graceful stop stores what it holds for at most this long


def is_urgent(topic: str, payload: bytes) -> bool:
    """Emergencies, falls and gateway status go first and are never shed — also when a
    gateway puts an emergency into a batch (a cheap byte check, no JSON parsing here)."""
    return topic.endswith("/status") or contract.carries_urgent(topic, payload)


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
        self,
        settings: Settings,
        *,
        client_id: str | None = None,
        only: str | None = None,
        health: Health | None = None,
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
        if self.queue_max + self.batch_max >= settings.mqtt_max_inflight:
            log.warning(
                "ingest_queue_max (%d) + ingest_batch_max (%d) >= mqtt_max_inflight (%d): the "
                "bulk queue can never fill, so the broker, not this worker, decides what "
                "overflows under overload",
                self.queue_max,
                self.batch_max,
                settings.mqtt_max_inflight,
            )
        self.pipeline = Pipeline()
        self.urgent: deque[Message] = deque()
        self.bulk: deque[Message] = deque()
        self.deferred: deque[Message] = deque()  # urgent copies a bulk-only process keeps
        self.parked: deque[Message] = deque()  # failed RETRY_LIMIT times, retried on their own
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
        self.health = health or Health(self.client_id + (f"/{only}" if only else ""))
        self.health.links = {name: link.subscribed for name, link in self.links.items()}
        self.subscribed = threading.Event()  # both links are subscribed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._urgent_ready = asyncio.Event()
        self._bulk_ready = asyncio.Event()
        self._parked_ready = asyncio.Event()
        self._logged_at: dict[str, float] = {}  # consumer → when its failure was last logged
        self._storing: dict[str, int] = {}  # consumer → messages in its open transaction
        for name in ("urgent", "bulk", "deferred", "parked"):
            queue = getattr(self, name)
            QUEUE.labels(name).set_function(lambda q=queue: len(q))
        QUEUE.labels("storing").set_function(lambda: sum(self._storing.values()))

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
        urgent_topic = msg.topic.endswith(URGENT_SUFFIXES)
        if link.name == "bulk" and self.only is None and urgent_topic:
            urgent_link = self.links["urgent"]
            if urgent_link.subscribed.is_set():
                client.ack(msg.mid, msg.qos)  # this process's urgent link holds its own copy
                return
            # The urgent link is not subscribed (yet, or any more): this copy is the one.
        item = Message(
            msg.topic, msg.payload, datetime.now(UTC), msg.mid, msg.qos, link.generation, link.name
        )
        if self.only == "bulk" and urgent_topic:
            # The urgent process stores these; this copy is the safety net. Taken up a little
            # later, it finds the message already stored — instead of racing the urgent
            # process for the same row and making it wait on this busier process.
            item.safety_net = True
            self.deferred.append(item)
            return
        if link.name == "urgent" or urgent_topic or contract.carries_urgent(msg.topic, msg.payload):
            self.urgent.append(item)
            self._loop.call_soon_threadsafe(self._urgent_ready.set)
            return
        if len(self.bulk) >= self.queue_max and self.health.storing("bulk"):
            self._shed_oldest()
        self.bulk.append(item)
        if len(self.bulk) == 1 or len(self.bulk) == self.batch_max:
            self._loop.call_soon_threadsafe(self._bulk_ready.set)

    def _shed_oldest(self) -> None:
        """Overload: ack the oldest waiting non-urgent message unstored. The oldest, because
        the freshest readings are worth most, and because Mosquitto looks an ack up from the
        head of its in-flight list (an ack for the newest would scan all of it)."""
        try:
            oldest = self.bulk.popleft()
        except IndexError:  # the consumer took them all meanwhile
            return
        SHED.labels(oldest.topic.rsplit("/", 1)[-1][:16]).inc()
        self._ack([oldest])

    def _on_disconnect(self, client, link: Link, flags, reason_code, properties) -> None:
        SUBSCRIBED.labels(link.name).set(0)
        link.subscribed.clear()
        self.subscribed.clear()
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
        dsn = plain_url(self.settings.database_url)
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=2,
                max_size=5,
                server_settings={"timezone": "UTC"},  # timestamps the database formats are UTC
            )
        except Exception as exc:
            self.health.failing("database", exc)
            raise
        self.health.stored("database")
        for link in self.links.values():
            self._connect(link)
        tasks = [
            asyncio.create_task(supervised("urgent", lambda: self._consume(pool, urgent=True))),
            asyncio.create_task(
                supervised("directory", lambda: self.pipeline.directory.maintain(dsn))
            ),
            asyncio.create_task(supervised("health", lambda: self.health.record(pool))),
            asyncio.create_task(supervised("parked", lambda: self._consume_parked(pool))),
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
            await self._leave()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for link in self.links.values():
                if link.client is not None:
                    link.client.disconnect()
                    link.client.loop_stop()
            await pool.close()

    async def _leave(self) -> None:
        """A graceful stop (SIGTERM: a rolling restart, a scale-down) leaves the shared
        groups before it goes: the broker keeps delivering a group's share to a persistent
        session whose client is gone, so a replica that just disconnected would take its
        turn at messages — emergencies included — that nobody reads until it returns. It
        unsubscribes, stores and acks what it already holds, then disconnects; a crash
        instead keeps the session, and the replica (a stable client id) resumes it."""
        for link in self.links.values():
            if link.client is not None and link.subscribed.is_set():
                filters = link.plain_filters if self.shared is False else link.shared_filters
                link.client.unsubscribe(list(filters))
                link.subscribed.clear()
                SUBSCRIBED.labels(link.name).set(0)
        deadline = time.monotonic() + LEAVE_DRAIN_S
        # Polled: the queues are deques the paho threads fill, with no event to wait on.
        while time.monotonic() < deadline and (  # noqa: ASYNC110
            self.urgent or self.bulk or self.deferred or any(self._storing.values())
        ):
            await asyncio.sleep(0.05)

    async def _consume(self, pool: asyncpg.Pool, *, urgent: bool) -> None:
        queue = self.urgent if urgent else self.bulk
        ready = self._urgent_ready if urgent else self._bulk_ready
        consumer = "urgent" if urgent else "bulk"
        while True:
            if not queue:
                ready.clear()
                if not queue:
                    await ready.wait()
                continue
            if not urgent and len(queue) < self.batch_max:
                # Let a batch form: up to batch_max items or flush_s after the first one.
                with contextlib.suppress(IndexError):  # shed meanwhile
                    deadline = queue[0].received_at.timestamp() + self.flush_s
                    ready.clear()
                    wait = deadline - time.time()
                    if wait > 0 and len(queue) < self.batch_max:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(ready.wait(), wait)
            batch: list[Message] = []
            limit = 1 if urgent else self.batch_max
            with contextlib.suppress(IndexError):  # the paho thread sheds from the same end
                while len(batch) < limit:
                    batch.append(queue.popleft())
            if batch:
                self._storing[consumer] = len(batch)
                try:
                    await self._commit(pool, batch, consumer)
                finally:
                    self._storing[consumer] = 0

    async def _consume_deferred(self, pool: asyncpg.Pool) -> None:
        """The bulk-only safety net: urgent copies, taken up once the urgent process had
        its chance (they arrive in order, so the due ones are at the left)."""
        while True:
            due = []
            cutoff = datetime.now(UTC) - timedelta(seconds=SAFETY_NET_DELAY_S)
            while self.deferred and self.deferred[0].received_at <= cutoff:
                due.append(self.deferred.popleft())
            if due:
                self._storing["deferred"] = len(due)
                try:
                    await self._commit(pool, due, "deferred")
                finally:
                    self._storing["deferred"] = 0
            await asyncio.sleep(0.2)

    async def _commit(self, pool: asyncpg.Pool, batch: list[Message], consumer: str) -> None:
        """Store ``batch`` and ack it; never raises, never acks what is not stored.

        The message's fault (``is_data_error``): a batch is split until the culprit is
        alone, and that one is dead-lettered. Not the message's fault: retried with backoff
        while ``/readyz`` is red; a batch that keeps failing is split too, so that one
        message tripping a bug cannot hold up the others. An emergency or fall that still
        fails after ``RETRY_LIMIT`` attempts is set aside with its alert."""
        delay, attempts = 0.1, 0
        urgent = len(batch) == 1 and contract.carries_urgent(batch[0].topic, batch[0].payload)
        while True:
            try:
                async with pool.acquire() as conn:
                    outcome = await self.pipeline.commit(conn, batch)
            except Exception as exc:
                data = is_data_error(exc)
                if data and len(batch) == 1:
                    log.warning(
                        "the database refused a message on %s (%s); dead-lettering it",
                        _topic_for_log(batch[0].topic),
                        describe(exc),
                    )
                    if await self._set_aside(pool, batch[0], consumer, exc):
                        self._ack(batch)
                        return
                    attempts += 1
                elif data or (len(batch) > 1 and attempts + 1 >= SPLIT_AFTER):
                    if not data:
                        self.health.failing(consumer, exc)
                    half = len(batch) // 2
                    await self._commit(pool, batch[:half], consumer)
                    await self._commit(pool, batch[half:], consumer)
                    return
                else:
                    attempts += 1
                    failure = self.health.failing(consumer, exc)
                    if time.monotonic() - self._logged_at.get(consumer, 0.0) > LOG_EVERY_S:
                        self._logged_at[consumer] = time.monotonic()
                        log.error(
                            "%s: storing %d message(s) failed (%s), not the messages' fault: "
                            "kept unacknowledged, retrying (attempt %d, failing since %s)%s",
                            consumer,
                            len(batch),
                            describe(exc),
                            failure.attempts,
                            failure.since.isoformat(timespec="seconds"),
                            "" if isinstance(exc, asyncpg.PostgresError) else "\n" + where(exc),
                        )
                    # An emergency does not wait for the store to be mended: a person hears
                    # of it through the fallback, if that can be committed.
                    if len(batch) == 1 and attempts >= RETRY_LIMIT:
                        if urgent and await self._set_aside(pool, batch[0], consumer, exc):
                            self._ack(batch)
                            return
                        # Whatever is behind it must not wait: retried on its own, unacked.
                        self._park(batch[0], consumer, exc)
                        return
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            self.health.stored(consumer)
            self.stored += outcome.stored
            self._ack(batch)
            return

    def _park(self, item: Message, consumer: str, cause: BaseException) -> None:
        log.warning(
            "%s: a message on %s keeps failing; parked (unacknowledged) so the rest can go on",
            consumer,
            _topic_for_log(item.topic),
        )
        # The consumer moves on; readiness stays red through "parked" until it is stored.
        self.health.failing("parked", cause)
        self.health.stored(consumer)
        self.parked.append(item)
        self._parked_ready.set()

    async def _consume_parked(self, pool: asyncpg.Pool) -> None:
        """Messages that failed ``RETRY_LIMIT`` times, each tried once per round, with backoff
        between rounds, until stored (or, being the message's fault or a possible emergency,
        set aside). Readiness stays red while any waits here."""
        delay = 0.5
        while True:
            if not self.parked:
                self.health.stored("parked")
                self._parked_ready.clear()
                await self._parked_ready.wait()
                delay = 0.5
                continue
            for _ in range(len(self.parked)):
                item = self.parked.popleft()
                if not await self._try_parked(pool, item):
                    self.parked.append(item)
            if self.parked:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    async def _try_parked(self, pool: asyncpg.Pool, item: Message) -> bool:
        """One attempt at a parked message; True once it is acked (stored or set aside)."""
        self._storing["parked"] = 1
        try:
            async with pool.acquire() as conn:
                outcome = await self.pipeline.commit(conn, [item])
        except Exception as exc:
            urgent = contract.carries_urgent(item.topic, item.payload)
            if (is_data_error(exc) or urgent) and await self._set_aside(pool, item, "parked", exc):
                self._ack([item])
                return True
            self.health.failing("parked", exc)
            return False
        finally:
            self._storing["parked"] = 0
        self.stored += outcome.stored
        self._ack([item])
        return True

    async def _set_aside(
        self, pool: asyncpg.Pool, item: Message, consumer: str, cause: BaseException
    ) -> bool:
        """Dead letter (+ ``unprocessed_emergency`` alert when urgent), committed; False when
        that failed too (the message then stays unacknowledged)."""
        try:
            async with pool.acquire() as conn:
                outcome = await self.pipeline.set_aside(conn, item, type(cause).__name__)
        except Exception as exc:
            self.health.failing(consumer, exc)
            log.error(
                "%s: could not set aside a message on %s (%s); it stays unacknowledged",
                consumer,
                _topic_for_log(item.topic),
                describe(exc),
            )
            return False
        log.warning(
            "%s: message on %s set aside as processing_error (%s)%s",
            consumer,
            _topic_for_log(item.topic),
            type(cause).__name__,
            ", unprocessed_emergency alert raised" if outcome.alerts else "",
        )
        return True

    def _ack(self, batch: list[Message]) -> None:
        for item in batch:
            link = self.links[item.link]
            # An ack for a message of an earlier connection is dropped: the broker redelivers
            # it, and its packet id may already name another message.
            if item.qos and link.client is not None and item.generation == link.generation:
                link.client.ack(item.mid, item.qos)


def _topic_for_log(topic: str) -> str:
    """A topic names ids, never readings; bounded and printable all the same."""
    return topic[:160].encode("ascii", "backslashreplace").decode()
