"""What happens to a batch of MQTT messages: validate, store once, update state, apply rules.

``Pipeline.process`` runs in one transaction on one asyncpg connection; the worker acks the
messages only after it returns. Everything it refuses goes to ``dead_letters`` with a reason,
in that same transaction, so nothing is lost and nothing stops the batch.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import orjson
from prometheus_client import Counter

from services.telemetry import contract
from services.telemetry.alerts import lifecycle, rules
from services.telemetry.ingest.directory import DeviceDirectory

log = logging.getLogger(__name__)

EVENTS_STORED = Counter("eldercare_ingest_events_total", "events stored", ["event"])
DUPLICATES = Counter("eldercare_ingest_duplicates_total", "redelivered events dropped")
DEAD_LETTERS = Counter("eldercare_ingest_dead_letters_total", "messages refused", ["reason"])
THRESHOLDS_TTL_S = 30.0
ALERTS = Counter("eldercare_alerts_raised_total", "alerts raised", ["kind", "severity"])


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    received_at: datetime
    mid: int = 0
    qos: int = 1
    generation: int = 0  # which connection of its link it arrived on
    link: str = "bulk"


@dataclass
class Outcome:
    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    alerts: list[str] = field(default_factory=list)


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

    async def process(self, conn: asyncpg.Connection, messages: list[Message]) -> Outcome:
        """Store and evaluate ``messages``; the caller owns the transaction."""
        outcome = Outcome()
        dead: list[tuple[datetime, str, bytes, str, str]] = []
        events: list[tuple[contract.Event, datetime]] = []
        statuses: list[tuple[contract.Status, datetime]] = []
        for m in messages:
            try:
                parsed = contract.parse(m.topic, m.payload)
            except contract.Refused as refused:
                dead.append((m.received_at, m.topic, m.payload, refused.reason, refused.detail))
                continue
            if isinstance(parsed, contract.Status):
                statuses.append((parsed, m.received_at))
                continue
            for item in parsed:
                if isinstance(item, contract.RefusedItem):
                    payload = orjson.dumps(item.item, option=orjson.OPT_NON_STR_KEYS)
                    dead.append(
                        (
                            m.received_at,
                            f"{m.topic}#{item.index}",
                            payload,
                            item.refused.reason,
                            item.refused.detail,
                        )
                    )
                else:
                    events.append((item, m.received_at))
        devices = await self.directory.resolve(conn, {e.device_id for e, _ in events})
        accepted: list[tuple[contract.Event, datetime]] = []
        seen_keys: set[tuple[str, str]] = set()
        for event, received_at in events:
            info = devices.get(event.device_id)
            if info is None:
                dead.append(_dead_event(event, received_at, "unknown_device"))
            elif info.gateway_id != event.gateway_id:
                dead.append(
                    _dead_event(
                        event,
                        received_at,
                        "gateway_mismatch",
                        f"device belongs to {info.gateway_id}",
                    )
                )
            elif (event.device_id, event.msg_id) in seen_keys:
                outcome.duplicates += 1  # the same message twice in one batch
            else:
                seen_keys.add((event.device_id, event.msg_id))
                accepted.append((event, received_at))
        if dead:
            await conn.execute(_DEAD, *map(list, zip(*dead, strict=True)))
            outcome.dead = len(dead)
            for row in dead:
                DEAD_LETTERS.labels(row[3]).inc()
        fresh = await self._store(conn, accepted, devices) if accepted else []
        outcome.stored = len(fresh)
        outcome.duplicates += len(accepted) - len(fresh)
        if outcome.duplicates:
            DUPLICATES.inc(outcome.duplicates)
        for event, received_at in fresh:
            EVENTS_STORED.labels(event.event).inc()
            outcome.alerts += await self._evaluate(
                conn, event, received_at, devices[event.device_id].elder_id
            )
        for status, received_at in statuses:
            outcome.alerts += await self._gateway_status(conn, status, received_at)
        return outcome

    async def _store(
        self, conn: asyncpg.Connection, accepted, devices
    ) -> list[tuple[contract.Event, datetime]]:
        cols: list[list] = [[] for _ in range(9)]
        for event, received_at in accepted:
            skew = int((event.device_ts - received_at).total_seconds())
            for col, value in zip(
                cols,
                (
                    received_at,
                    event.device_id,
                    event.msg_id,
                    event.device_ts,
                    event.gateway_id,
                    devices[event.device_id].elder_id,
                    event.event,
                    max(min(skew, 2**31 - 1), -(2**31)),
                    orjson.dumps(event.data).decode(),
                ),
                strict=True,
            ):
                col.append(value)
        rows = await conn.fetch(_INSERT_EVENTS, *cols)
        stored = {(r["device_id"], r["msg_id"]) for r in rows}
        fresh = [(e, r) for e, r in accepted if (e.device_id, e.msg_id) in stored]
        await self._update_state(conn, fresh, devices)
        return fresh

    async def _update_state(self, conn, fresh, devices) -> None:
        latest: dict[str, list] = {}
        for event, received_at in fresh:
            s = latest.setdefault(
                event.device_id,
                [
                    event.device_id,
                    event.gateway_id,
                    devices[event.device_id].elder_id,
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
            if event.event == "heartbeat":
                s[4] = max(filter(None, (s[4], event.device_ts)))
                s[5] = event.data.get("battery", s[5])
            elif event.event == "motion" and event.data.get("state") == "active":
                s[6] = max(filter(None, (s[6], event.device_ts)))
            elif event.event == "bed" and (s[8] is None or event.device_ts >= s[8]):
                s[7], s[8] = event.data["state"], event.device_ts
            s[9] = s[9] or rules.clock_skewed(event.device_ts, received_at, self.config)
        if latest:
            await conn.execute(_STATE, *map(list, zip(*latest.values(), strict=True)))

    async def _evaluate(
        self, conn, event: contract.Event, received_at: datetime, elder_id
    ) -> list[str]:
        raised: list[str] = []
        at = min(event.device_ts, received_at)
        if event.event in contract.URGENT:
            r = await lifecycle.raise_alert(
                conn,
                kind=event.event,
                severity="critical",
                subject=str(elder_id),
                at=at,
                elder_id=elder_id,
                gateway_id=event.gateway_id,
                device_id=event.device_id,
                value=event.data.get("confidence"),
                details={"msg_id": event.msg_id, **event.data},
                window_s=120,
            )
            raised.append(_note(r, event.event, "critical"))
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
                    r = await lifecycle.raise_alert(
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
                    raised.append(_note(r, kind, breach.severity))
        elif event.event == "heartbeat" and rules.low_battery(
            event.data.get("battery"), self.config
        ):
            r = await lifecycle.raise_alert(
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
            raised.append(_note(r, "low_battery", "info"))
        return raised

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
        self, conn, status: contract.Status, received_at: datetime
    ) -> list[str]:
        row = await conn.fetchrow(_GATEWAY, status.gateway_id, status.online, received_at)
        if row is None:
            return []  # stale: a newer status is already recorded
        was_online = row["was_online"]
        if status.online:
            await lifecycle.close_active(
                conn,
                subject=status.gateway_id,
                kind="gateway_offline",
                actor="system",
                note="gateway back online",
            )
            return []
        if was_online is False:
            return []  # already known offline (a retained status replayed on resubscribe)
        gateway = (await self.directory.resolve(conn, {status.gateway_id})).get(status.gateway_id)
        elder_id = gateway.elder_id if gateway else None
        r = await lifecycle.raise_alert(
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
        return [_note(r, "gateway_offline", "warning")]


def _dead_event(event: contract.Event, received_at: datetime, reason: str, detail: str = ""):
    topic = f"{contract.PREFIX}{event.gateway_id}/{event.device_id}/{event.event}"
    payload = orjson.dumps(
        {"msg_id": event.msg_id, "ts": event.device_ts.isoformat(), **event.data}
    )
    return (received_at, topic, payload, reason, detail or f"device {event.device_id}")


def _note(raised: lifecycle.Raised, kind: str, severity: str) -> str:
    if raised.created:
        ALERTS.labels(kind, severity).inc()
    return f"{kind}:{'new' if raised.created else 'repeat'}:{raised.alert_id}"


def now_utc() -> datetime:
    return datetime.now(UTC)
