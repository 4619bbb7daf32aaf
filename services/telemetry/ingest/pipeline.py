"""What happens to a batch of MQTT messages: validate, store once, update state, apply rules.

``Pipeline.commit`` runs ``process`` in one transaction on one asyncpg connection, and counts
what it did in the metrics only once that transaction has committed (a retried transaction
would otherwise count twice); the worker acks the messages after it returns. Everything
``process`` refuses goes to ``dead_letters`` with a reason, in that same transaction, so
nothing is lost and nothing stops the batch.

Emergencies and falls are never refused on a technicality: one from a device whose kind
should not send it, with a ``ts`` far in the future, or from a device the registry does not
(yet) know behind a known gateway raises its alert, flagged. One that cannot be attributed to
anybody (unknown gateway too) is dead-lettered whole *and* raises a critical
``unknown_device_emergency``; one that cannot even be read raises ``unprocessed_emergency``
next to its dead letter.
"""

from __future__ import annotations

import collections
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
from prometheus_client import Counter

from services.telemetry import contract
from services.telemetry.alerts import lifecycle, rules
from services.telemetry.ingest.directory import DeviceDirectory, DeviceInfo

log = logging.getLogger(__name__)

EVENTS_STORED = Counter("eldercare_ingest_events_total", "events stored", ["event"])
DUPLICATES = Counter(
    "eldercare_ingest_duplicates_total",
    "events dropped as already stored: QoS 1 redeliveries, or the bulk process's "
    "safety-net copies of urgent messages",
    ["source"],
)
DEAD_LETTERS = Counter("eldercare_ingest_dead_letters_total", "messages refused", ["reason"])
FLAGGED = Counter(
    "eldercare_ingest_flagged_total",
    "urgent events raised although something was wrong with them",
    ["flag"],
)
ALERTS = Counter("eldercare_alerts_raised_total", "alerts raised", ["kind", "severity"])
THRESHOLDS_TTL_S = 30.0

# Alert kinds of the ingest's own (the rules' kinds are the events' and ``rules.vital_kind``).
UNPROCESSED_EMERGENCY = "unprocessed_emergency"
UNKNOWN_DEVICE_EMERGENCY = "unknown_device_emergency"
UNKNOWN_DEVICE = "unknown_device"
GATEWAY_MISMATCH = "gateway_mismatch"
# How far apart the urgent process's and the bulk safety net's copies of one message arrive.
SAFETY_NET_WINDOW = timedelta(minutes=2)


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    received_at: datetime
    mid: int = 0
    qos: int = 1
    generation: int = 0  # which connection of its link it arrived on
    link: str = "bulk"
    safety_net: bool = False  # the bulk process's copy of an urgent message


@dataclass
class Outcome:
    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    alerts: list[str] = field(default_factory=list)
    # What the metrics are told once the transaction has committed:
    stored_by_event: collections.Counter[str] = field(default_factory=collections.Counter)
    dead_by_reason: collections.Counter[str] = field(default_factory=collections.Counter)
    duplicates_by_source: collections.Counter[str] = field(default_factory=collections.Counter)
    flagged: collections.Counter[str] = field(default_factory=collections.Counter)
    raised: list[tuple[str, str]] = field(default_factory=list)  # (kind, severity), new ones

    def record(self) -> None:
        """Count this outcome in the metrics (call after the commit, once)."""
        for event, n in self.stored_by_event.items():
            EVENTS_STORED.labels(event).inc(n)
        for reason, n in self.dead_by_reason.items():
            DEAD_LETTERS.labels(reason).inc(n)
        for source, n in self.duplicates_by_source.items():
            DUPLICATES.labels(source).inc(n)
        for flag, n in self.flagged.items():
            FLAGGED.labels(flag).inc(n)
        for kind, severity in self.raised:
            ALERTS.labels(kind, severity).inc()

    def note(self, raised: lifecycle.Raised, kind: str, severity: str) -> str:
        if raised.created:
            self.raised.append((kind, severity))
        note = f"{kind}:{'new' if raised.created else 'repeat'}:{raised.alert_id}"
        self.alerts.append(note)
        return note


@dataclass(slots=True)
class Dead:
    """A dead letter to write, and whether it is an emergency nobody could be told of yet."""

    received_at: datetime
    topic: str
    payload: bytes
    reason: str
    detail: str
    urgent: bool = False
    gateway_id: str | None = None  # a valid gateway id, when the topic has one
    safety_net: bool = False


@dataclass(slots=True)
class Accepted:
    event: contract.Event
    received_at: datetime
    elder_id: uuid.UUID
    known: bool  # the registry knows this device behind this gateway
    safety_net: bool
    flags: tuple[str, ...] = ()
    details: dict[str, str] = field(default_factory=dict)


_INSERT_EVENTS = """
WITH input AS (
    SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::timestamptz[],
                         $5::text[], $6::uuid[], $7::text[], $8::int[], $9::jsonb[])
        AS t(received_at, device_id, msg_id, device_ts, gateway_id, elder_id, event, skew_s,
             data)
), fresh AS (
    INSERT INTO telemetry.seen (device_id, msg_id, received_at)
    SELECT device_id, msg_id, received_at FROM input
    ON CONFLICT DO NOTHING
    RETURNING device_id, msg_id
)
INSERT INTO telemetry.events (received_at, device_id, msg_id, device_ts, gateway_id, elder_id,
                              event, skew_s, data)
SELECT i.* FROM input i JOIN fresh f USING (device_id, msg_id)
RETURNING device_id, msg_id
"""

_DEAD = """
INSERT INTO telemetry.dead_letters (received_at, topic, payload, reason, detail)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bytea[], $4::text[], $5::text[])
"""
_DEAD_ONE = """
INSERT INTO telemetry.dead_letters (received_at, topic, payload, reason, detail)
VALUES ($1, $2, $3, $4, $5) RETURNING id
"""

# The urgent process and the bulk safety net both see every urgent message: the second to
# refuse one finds the first's dead letter and does not write (nor alert) again.
_DEAD_ALREADY = """
SELECT topic, payload FROM telemetry.dead_letters
WHERE received_at BETWEEN $1 AND $2 AND topic = ANY($3::text[])
"""

_STATE = """
INSERT INTO telemetry.device_state AS s (device_id, gateway_id, elder_id, last_seen_at,
    last_heartbeat_at, battery, last_motion_at, bed_state, bed_state_at, clock_skewed)
SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::timestamptz[],
                     $5::timestamptz[], $6::smallint[], $7::timestamptz[], $8::text[],
                     $9::timestamptz[], $10::bool[])
ON CONFLICT (device_id) DO UPDATE SET
    gateway_id = excluded.gateway_id,
    elder_id = excluded.elder_id,
    last_seen_at = greatest(s.last_seen_at, excluded.last_seen_at),
    last_heartbeat_at = coalesce(greatest(s.last_heartbeat_at, excluded.last_heartbeat_at),
                                 s.last_heartbeat_at, excluded.last_heartbeat_at),
    battery = coalesce(excluded.battery, s.battery),
    last_motion_at = coalesce(greatest(s.last_motion_at, excluded.last_motion_at),
                              s.last_motion_at, excluded.last_motion_at),
    bed_state = CASE WHEN excluded.bed_state_at IS NOT NULL AND
                     (s.bed_state_at IS NULL OR excluded.bed_state_at >= s.bed_state_at)
                     THEN excluded.bed_state ELSE s.bed_state END,
    bed_state_at = CASE WHEN excluded.bed_state_at IS NOT NULL AND
                        (s.bed_state_at IS NULL OR excluded.bed_state_at >= s.bed_state_at)
                        THEN excluded.bed_state_at ELSE s.bed_state_at END,
    clock_skewed = excluded.clock_skewed
"""

_BREACH = """
WITH b AS (
    INSERT INTO telemetry.vital_breaches (id, elder_id, metric, severity, value, at)
    VALUES (gen_random_uuid(), $1, $2, $3, $4, $5)
)
SELECT count(*) + 1 FROM telemetry.vital_breaches
WHERE elder_id = $1 AND metric = $2 AND at > $5 - make_interval(secs => $6) AND at <= $5
"""

# Only a status newer than the one stored applies: redeliveries and the bulk process's
# safety-net copies arrive late, and must not turn a reconnected gateway offline again.
_GATEWAY = """
INSERT INTO telemetry.gateways AS g (gateway_id, online, changed_at) VALUES ($1, $2, $3)
ON CONFLICT (gateway_id) DO UPDATE SET online = excluded.online, changed_at = excluded.changed_at
    WHERE g.changed_at <= excluded.changed_at
RETURNING (SELECT online FROM telemetry.gateways WHERE gateway_id = $1) AS was_online
"""


class Pipeline:
    def __init__(
        self, directory: DeviceDirectory | None = None, config: rules.Config | None = None
    ) -> None:
        self.directory = directory or DeviceDirectory()
        self.config = config or rules.defaults()
        self._thresholds_cache: dict[uuid.UUID, tuple[float, dict[str, rules.Threshold]]] = {}

    async def commit(self, conn: asyncpg.Connection, messages: list[Message]) -> Outcome:
        """``process`` in a transaction of its own; the metrics count it once committed."""
        async with conn.transaction():
            outcome = await self.process(conn, messages)
        outcome.record()
        return outcome

    async def process(self, conn: asyncpg.Connection, messages: list[Message]) -> Outcome:
        """Store and evaluate ``messages``; the caller owns the transaction."""
        outcome = Outcome()
        dead: list[Dead] = []
        events: list[tuple[contract.Event, Message]] = []
        statuses: list[tuple[contract.Status, datetime]] = []
        for m in messages:
            try:
                parsed = contract.parse(m.topic, m.payload, received_at=m.received_at)
            except contract.Refused as refused:
                urgent = contract.carries_urgent(m.topic, m.payload)
                dead.append(_refused(m, m.topic, m.payload, refused, urgent))
                continue
            if isinstance(parsed, contract.Status):
                statuses.append((parsed, m.received_at))
                continue
            for item in parsed:
                if isinstance(item, contract.RefusedItem):
                    payload = orjson.dumps(item.item, option=orjson.OPT_NON_STR_KEYS)
                    urgent = contract.item_event(item.item) in contract.URGENT
                    topic = f"{m.topic}#{item.index}"
                    dead.append(_refused(m, topic, payload, item.refused, urgent))
                else:
                    events.append((item, m))
        wanted = {e.device_id for e, _ in events}
        wanted |= {e.gateway_id for e, _ in events if e.event in contract.URGENT}
        wanted |= {d.gateway_id for d in dead if d.urgent and d.gateway_id}
        devices = await self.directory.resolve(conn, wanted)
        accepted = self._accept(events, devices, dead, outcome)
        if dead:
            await self._dead_letters(conn, dead, devices, outcome)
        fresh = await self._store(conn, accepted) if accepted else []
        outcome.stored = len(fresh)
        for a in fresh:
            outcome.stored_by_event[a.event.event] += 1
            outcome.flagged.update(a.flags)
        stored = {(a.event.device_id, a.event.msg_id) for a in fresh}
        for a in accepted:
            if (a.event.device_id, a.event.msg_id) not in stored:
                outcome.duplicates += 1
                outcome.duplicates_by_source["safety_net" if a.safety_net else "redelivery"] += 1
        for a in fresh:
            await self._evaluate(conn, a, outcome)
        for status, received_at in statuses:
            await self._gateway_status(conn, status, received_at, outcome)
        return outcome

    def _accept(
        self,
        events: list[tuple[contract.Event, Message]],
        devices: dict[str, DeviceInfo],
        dead: list[Dead],
        outcome: Outcome,
    ) -> list[Accepted]:
        """Which parsed events are stored, against which elder; the rest join ``dead``."""
        accepted: list[Accepted] = []
        seen_keys: set[tuple[str, str]] = set()
        for event, m in events:
            key = (event.device_id, event.msg_id)
            if key in seen_keys:  # the same message twice in one batch
                outcome.duplicates += 1
                outcome.duplicates_by_source["redelivery"] += 1
                continue
            urgent = event.event in contract.URGENT
            info = devices.get(event.device_id)
            flags = list(event.flags)
            details: dict[str, str] = {}
            if info is not None and info.gateway_id == event.gateway_id:
                if not contract.allowed(info.kind, event.event):
                    if not urgent:
                        detail = f"a {info.kind} may not send {event.event}"
                        dead.append(_dead_event(event, m, contract.NOT_ALLOWED, detail))
                        continue
                    flags.append(contract.NOT_ALLOWED)
                    details["device_kind"] = info.kind
                elder_id, known = info.elder_id, True
            else:
                reason = UNKNOWN_DEVICE if info is None else GATEWAY_MISMATCH
                detail = (
                    f"device {event.device_id}"
                    if info is None
                    else f"device belongs to {info.gateway_id}"
                )
                gateway = devices.get(event.gateway_id)
                if not urgent or gateway is None or gateway.kind != "gateway":
                    # An urgent one nobody can be attributed to is dead-lettered whole and
                    # alerted as ``unknown_device_emergency`` (see ``_dead_letters``).
                    dead.append(_dead_event(event, m, reason, detail, urgent=urgent))
                    continue
                # Behind a gateway we know: the elder of that home hears of it.
                flags.append(reason)
                if info is not None:
                    details["registered_gateway"] = info.gateway_id
                elder_id, known = gateway.elder_id, False
            seen_keys.add(key)
            accepted.append(
                Accepted(event, m.received_at, elder_id, known, m.safety_net, tuple(flags), details)
            )
        return accepted

    async def _dead_letters(
        self,
        conn: asyncpg.Connection,
        dead: list[Dead],
        devices: dict[str, DeviceInfo],
        outcome: Outcome,
    ) -> None:
        if any(d.safety_net for d in dead):
            dead = await self._drop_safety_net_copies(conn, dead, outcome)
            if not dead:
                return
        plain = [d for d in dead if not d.urgent]
        if plain:
            await conn.execute(
                _DEAD,
                [d.received_at for d in plain],
                [_text(d.topic) for d in plain],
                [d.payload for d in plain],
                [d.reason for d in plain],
                [_text(d.detail) for d in plain],
            )
        for d in dead:
            if d.urgent:  # rare: one at a time, so that the alert can name its dead letter
                dead_letter_id = await conn.fetchval(
                    _DEAD_ONE, d.received_at, _text(d.topic), d.payload, d.reason, _text(d.detail)
                )
                await self._unattributed_emergency(conn, d, dead_letter_id, devices, outcome)
        outcome.dead += len(dead)
        outcome.dead_by_reason.update(d.reason for d in dead)

    async def _drop_safety_net_copies(
        self, conn: asyncpg.Connection, dead: list[Dead], outcome: Outcome
    ) -> list[Dead]:
        at = [d.received_at for d in dead]
        rows = await conn.fetch(
            _DEAD_ALREADY,
            min(at) - SAFETY_NET_WINDOW,
            max(at) + SAFETY_NET_WINDOW,
            sorted({_text(d.topic) for d in dead if d.safety_net}),
        )
        written = {(r["topic"], bytes(r["payload"])) for r in rows}
        keep = []
        for d in dead:
            if d.safety_net and (_text(d.topic), d.payload) in written:
                outcome.duplicates += 1
                outcome.duplicates_by_source["safety_net"] += 1
            else:
                keep.append(d)
        return keep

    async def _unattributed_emergency(
        self,
        conn: asyncpg.Connection,
        d: Dead,
        dead_letter_id: int,
        devices: dict[str, DeviceInfo],
        outcome: Outcome,
    ) -> None:
        """A dead-lettered emergency or fall still reaches a person: a critical alert on the
        gateway's elder when the gateway is known, pointing at the kept message."""
        unknown = d.reason in (UNKNOWN_DEVICE, GATEWAY_MISMATCH)
        kind = UNKNOWN_DEVICE_EMERGENCY if unknown else UNPROCESSED_EMERGENCY
        gateway = devices.get(d.gateway_id) if d.gateway_id else None
        raised = await lifecycle.raise_alert(
            conn,
            kind=kind,
            severity="critical",
            subject=d.gateway_id or "unknown-gateway",
            at=d.received_at,
            elder_id=gateway.elder_id if gateway else None,
            gateway_id=d.gateway_id,
            details={
                "topic": _text(d.topic)[:200],
                "reason": d.reason,
                "dead_letter_id": dead_letter_id,
            },
        )
        outcome.note(raised, kind, "critical")

    async def set_aside(self, conn: asyncpg.Connection, m: Message, error: str) -> Outcome:
        """A message the pipeline could not store: kept whole as a ``processing_error`` dead
        letter and, for an emergency or fall, an ``unprocessed_emergency`` alert — in one
        transaction, counted once committed. ``error`` names the error class (no values)."""
        outcome = Outcome()
        urgent = contract.carries_urgent(m.topic, m.payload)
        gateway = _gateway_of(m.topic)
        dead = Dead(
            m.received_at,
            m.topic,
            m.payload,
            "processing_error",
            f"the pipeline raised {error}",
            urgent,
            gateway,
            m.safety_net,
        )
        async with conn.transaction():
            devices = await self.directory.resolve(conn, {gateway} if gateway and urgent else set())
            await self._dead_letters(conn, [dead], devices, outcome)
        outcome.record()
        return outcome

    async def _store(self, conn: asyncpg.Connection, accepted: list[Accepted]) -> list[Accepted]:
        cols: list[list] = [[] for _ in range(9)]
        for a in accepted:
            event = a.event
            skew = int((event.device_ts - a.received_at).total_seconds())
            for col, value in zip(
                cols,
                (
                    a.received_at,
                    event.device_id,
                    event.msg_id,
                    event.device_ts,
                    event.gateway_id,
                    a.elder_id,
                    event.event,
                    max(min(skew, 2**31 - 1), -(2**31)),
                    orjson.dumps(event.data).decode(),
                ),
                strict=True,
            ):
                col.append(value)
        rows = await conn.fetch(_INSERT_EVENTS, *cols)
        stored = {(r["device_id"], r["msg_id"]) for r in rows}
        fresh = [a for a in accepted if (a.event.device_id, a.event.msg_id) in stored]
        await self._update_state(conn, [a for a in fresh if a.known])
        return fresh

    async def _update_state(self, conn: asyncpg.Connection, fresh: list[Accepted]) -> None:
        latest: dict[str, list] = {}
        for a in fresh:
            event, received_at = a.event, a.received_at
            s = latest.setdefault(
                event.device_id,
                [
                    event.device_id,
                    event.gateway_id,
                    a.elder_id,
                    received_at,
                    None,
                    None,
                    None,
                    None,
                    None,
                    False,
                ],
            )
            s[3] = max(s[3], received_at)
            # When it happened: the device's time, but never later than its arrival — a
            # device clock running fast must not make a home look active (or in bed) for
            # hours to come, hiding inactivity and night bed exits.
            at = min(event.device_ts, received_at)
            if event.event == "heartbeat":
                s[4] = max(filter(None, (s[4], at)))
                s[5] = event.data.get("battery", s[5])
            elif event.event == "motion" and event.data.get("state") == "active":
                s[6] = max(filter(None, (s[6], at)))
            elif event.event == "bed" and (s[8] is None or at >= s[8]):
                s[7], s[8] = event.data["state"], at
            s[9] = s[9] or rules.clock_skewed(event.device_ts, received_at, self.config)
        if latest:
            await conn.execute(_STATE, *map(list, zip(*latest.values(), strict=True)))

    async def _evaluate(self, conn: asyncpg.Connection, a: Accepted, outcome: Outcome) -> None:
        event, elder_id = a.event, a.elder_id
        at = min(event.device_ts, a.received_at)
        if event.event in contract.URGENT:
            details: dict = {"msg_id": event.msg_id, **event.data, **a.details}
            if a.flags:
                details["flags"] = list(a.flags)
                details["device_id"] = event.device_id
            raised = await lifecycle.raise_alert(
                conn,
                kind=event.event,
                severity="critical",
                subject=str(elder_id),
                at=at,
                elder_id=elder_id,
                gateway_id=event.gateway_id,
                # An unregistered device's id is not a device of the registry's.
                device_id=event.device_id if a.known else None,
                value=event.data.get("confidence"),
                details=details,
                window_s=120,
            )
            outcome.note(raised, event.event, "critical")
        elif event.event == "vitals":
            thresholds = await self._thresholds(conn, elder_id)
            for breach in rules.breaches(event.data, thresholds):
                t = thresholds[breach.metric]
                count = await conn.fetchval(
                    _BREACH,
                    elder_id,
                    breach.metric,
                    breach.severity,
                    breach.value,
                    event.device_ts,
                    float(t.window_s),
                )
                if rules.sustained(count, t):
                    kind = rules.vital_kind(breach, thresholds)
                    raised = await lifecycle.raise_alert(
                        conn,
                        kind=kind,
                        severity=breach.severity,
                        subject=str(elder_id),
                        at=at,
                        elder_id=elder_id,
                        gateway_id=event.gateway_id,
                        device_id=event.device_id,
                        value=breach.value,
                        details={"metric": breach.metric, "breaches_in_window": count},
                    )
                    outcome.note(raised, kind, breach.severity)
        elif event.event == "heartbeat" and rules.low_battery(
            event.data.get("battery"), self.config
        ):
            raised = await lifecycle.raise_alert(
                conn,
                kind="low_battery",
                severity="info",
                subject=event.device_id,
                at=at,
                elder_id=elder_id,
                gateway_id=event.gateway_id,
                device_id=event.device_id,
                value=event.data["battery"],
                window_s=24 * 3600,
            )
            outcome.note(raised, "low_battery", "info")

    async def _thresholds(self, conn, elder_id) -> dict[str, rules.Threshold]:
        """The elder's thresholds, cached briefly: vitals are most of the traffic, and an
        override edited in the console takes effect within ``THRESHOLDS_TTL_S``."""
        now = time.monotonic()
        hit = self._thresholds_cache.get(elder_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        overrides = await conn.fetchval(
            "SELECT thresholds FROM telemetry.elder_settings WHERE elder_id = $1", elder_id
        )
        thresholds = rules.thresholds_for(orjson.loads(overrides) if overrides else None)
        if len(self._thresholds_cache) > 100_000:
            self._thresholds_cache.clear()
        self._thresholds_cache[elder_id] = (now + THRESHOLDS_TTL_S, thresholds)
        return thresholds

    async def _gateway_status(
        self, conn, status: contract.Status, received_at: datetime, outcome: Outcome
    ) -> None:
        row = await conn.fetchrow(_GATEWAY, status.gateway_id, status.online, received_at)
        if row is None:
            return  # stale: a newer status is already recorded
        was_online = row["was_online"]
        if status.online:
            await lifecycle.close_active(
                conn,
                subject=status.gateway_id,
                kind="gateway_offline",
                actor="system",
                note="gateway back online",
            )
            return
        if was_online is False:
            return  # already known offline (a retained status replayed on resubscribe)
        gateway = (await self.directory.resolve(conn, {status.gateway_id})).get(status.gateway_id)
        if gateway is None:
            return  # retired or never registered: its last will concerns nobody's home
        elder_id = gateway.elder_id
        raised = await lifecycle.raise_alert(
            conn,
            kind="gateway_offline",
            severity="warning",
            subject=status.gateway_id,
            at=received_at,
            elder_id=elder_id,
            gateway_id=status.gateway_id,
            details={"source": "last will / status topic"},
            window_s=24 * 3600,
        )
        outcome.note(raised, "gateway_offline", "warning")


def _gateway_of(topic: str) -> str | None:
    """The topic's gateway id when it is a valid one (for alerts about unreadable messages)."""
    if not topic.startswith(contract.PREFIX):
        return None
    gateway = topic[len(contract.PREFIX) :].split("/", 1)[0]
    try:
        return contract._check_id(gateway, "gateway")
    except contract.Refused:
        return None


def _text(value: str) -> str:
    """Text PostgreSQL can store whatever a broker let through (no NUL, no lone surrogate):
    a dead letter must never fail because of what it is keeping."""
    return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _refused(
    m: Message, topic: str, payload: bytes, refused: contract.Refused, urgent: bool
) -> Dead:
    return Dead(
        m.received_at,
        topic,
        payload,
        refused.reason,
        refused.detail,
        urgent,
        _gateway_of(m.topic),
        m.safety_net,
    )


def _dead_event(
    event: contract.Event, m: Message, reason: str, detail: str, *, urgent: bool = False
) -> Dead:
    """A parsed event refused after parsing: a single message is kept as it came; a batch
    item as the item (re-serialised), under ``…/batch#index``."""
    if event.index is None:
        topic, payload = m.topic, m.payload
    else:
        topic = f"{m.topic}#{event.index}"
        payload = orjson.dumps(
            {
                "device_id": event.device_id,
                "event": event.event,
                "msg_id": event.msg_id,
                "ts": event.device_ts.isoformat(),
                **event.data,
            }
        )
    return Dead(
        m.received_at, topic, payload, reason, detail, urgent, event.gateway_id, m.safety_net
    )


def now_utc() -> datetime:
    return datetime.now(UTC)
