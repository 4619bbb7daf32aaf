"""The MQTT wire contract (DESIGN.md "Telemetry contract"): topics and payloads, validated.

``parse`` turns (topic, payload bytes) into ``Event`` records or raises ``Refused`` with a
machine-readable reason; it never raises anything else, whatever the bytes.

Which events each device kind may send, and how far ahead of the arrival time a device
timestamp may be, are data: ``device_events.yaml`` beside this module.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
)

PREFIX = "eldercare/v1/"
MAX_PAYLOAD = 64 * 1024
MAX_BATCH = 500
EVENTS = ("emergency", "fall", "vitals", "motion", "door", "bed", "heartbeat")
URGENT = frozenset({"emergency", "fall"})
DEVICE_EVENTS_FILE = Path(__file__).with_name("device_events.yaml")
# Flags an urgent event may carry instead of being refused (a person must still hear of it).
TS_IN_FUTURE = "ts_in_future"
NOT_ALLOWED = "event_not_allowed_for_device_kind"
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")

Number = StrictInt | StrictFloat


class Refused(Exception):
    """A message that cannot be stored; ``reason`` is the dead-letter category."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail[:500]


# RFC 3339 date-time (section 5.6), offset required. ASCII digits only: ``\\d`` would let
# other scripts' digits through to ``fromisoformat``.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _timestamp(value: Any) -> datetime:
    """``ts`` as the contract says: an RFC 3339 string with an offset, in UTC. Never an epoch
    number (pydantic would take one as seconds — or milliseconds — silently) and never a
    local time without an offset."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("ts must be an RFC 3339 date-time with an offset")
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):  # 2026-02-30, 24:00 offsets, year 1 minus an hour …
        raise ValueError("ts is not a valid date-time") from None


def _no_nul(value: str) -> str:
    # PostgreSQL text and jsonb cannot hold U+0000: refused here, as bad input, instead of
    # failing the whole transaction later.
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
Text = Annotated[str, AfterValidator(_no_nul)]


class _Base(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    msg_id: Annotated[Text, Field(min_length=1, max_length=64)]
    ts: Timestamp


class Emergency(_Base):
    button: Annotated[Text, Field(max_length=32)] = "main"


class Fall(_Base):
    confidence: Annotated[Number, Field(ge=0, le=1)] = 1.0


class Vitals(_Base):
    heart_rate: Annotated[Number, Field(ge=20, le=250)] | None = None
    resp_rate: Annotated[Number, Field(ge=0, le=80)] | None = None
    spo2: Annotated[Number, Field(ge=50, le=100)] | None = None
    systolic: Annotated[Number, Field(ge=50, le=260)] | None = None
    diastolic: Annotated[Number, Field(ge=30, le=160)] | None = None
    temp_c: Annotated[Number, Field(ge=30, le=45)] | None = None


class Motion(_Base):
    room: Annotated[Text, Field(min_length=1, max_length=32)]
    state: Literal["active", "idle"]


class Door(_Base):
    state: Literal["open", "closed"]


class Bed(_Base):
    state: Literal["in", "out"]


class Heartbeat(_Base):
    battery: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    rssi: Annotated[StrictInt, Field(ge=-150, le=0)] | None = None


MODELS: dict[str, type[_Base]] = {
    "emergency": Emergency,
    "fall": Fall,
    "vitals": Vitals,
    "motion": Motion,
    "door": Door,
    "bed": Bed,
    "heartbeat": Heartbeat,
}
VITAL_FIELDS = ("heart_rate", "resp_rate", "spo2", "systolic", "diastolic", "temp_c")


@dataclass(frozen=True, slots=True)
class Event:
    gateway_id: str
    device_id: str
    event: str
    msg_id: str
    device_ts: datetime
    data: dict[str, Any]  # the validated fields, without msg_id/ts
    flags: tuple[str, ...] = ()  # what an urgent event got away with (``TS_IN_FUTURE``)
    index: int | None = None  # position in its batch, for dead letters of batch items


@dataclass(frozen=True)
class DeviceEvents:
    """``device_events.yaml``: the events each device kind may send, and the ``ts`` bound."""

    kinds: dict[str, frozenset[str]]
    ts_max_ahead: timedelta

    def allowed(self, kind: str, event: str) -> bool:
        return event in self.kinds.get(kind, frozenset())


def load_device_events(path: Path = DEVICE_EVENTS_FILE) -> DeviceEvents:
    raw = yaml.safe_load(path.read_text("utf-8"))
    kinds = {kind: frozenset(events) for kind, events in raw["kinds"].items()}
    unknown = {e for events in kinds.values() for e in events} - set(EVENTS)
    if unknown:
        raise ValueError(f"{path.name}: unknown events {sorted(unknown)}")
    return DeviceEvents(kinds, timedelta(seconds=int(raw["ts_max_ahead_s"])))


@cache
def device_events() -> DeviceEvents:
    return load_device_events()


def allowed(kind: str, event: str) -> bool:
    """May a device of ``kind`` send ``event``?"""
    return device_events().allowed(kind, event)


@dataclass(frozen=True, slots=True)
class Status:
    gateway_id: str
    online: bool


def _check_id(value: str, what: str) -> str:
    if not 3 <= len(value) <= 64 or not set(value) <= _ID_CHARS:
        raise Refused("bad_topic", f"{what} {value[:70]!r} is not a valid id")
    return value


def split_topic(topic: str) -> tuple[str, str | None, str]:
    """``eldercare/v1/gw/dev/event`` → (gw, dev, event); ``…/gw/batch|status`` → (gw, None, x)."""
    if not topic.startswith(PREFIX):
        raise Refused("bad_topic", f"topic outside {PREFIX}")
    parts = topic[len(PREFIX) :].split("/")
    if len(parts) == 2 and parts[1] in ("batch", "status"):
        return _check_id(parts[0], "gateway"), None, parts[1]
    if len(parts) != 3:
        raise Refused("bad_topic", "expected eldercare/v1/{gateway}/{device}/{event}")
    gateway, device, event = parts
    if event not in MODELS:
        raise Refused("unknown_event", f"event {event[:40]!r}")
    return _check_id(gateway, "gateway"), _check_id(device, "device"), event


def topic_event(topic: str) -> str | None:
    """The event a topic names (``emergency``, ``batch``, …) whether or not the rest is valid:
    a refused emergency must still be recognised as one."""
    return topic.rsplit("/", 1)[-1] if topic.startswith(PREFIX) else None


_URGENT_MARKERS = tuple(f'"{e}"'.encode() for e in sorted(URGENT))


def carries_urgent(topic: str, payload: bytes) -> bool:
    """Might this message carry an emergency or a fall — alone, or inside a batch, valid or
    not? A byte check, no JSON parsing on the common path; when unsure, yes."""
    event = topic_event(topic)
    if event in URGENT:
        return True
    if event != "batch":
        return False
    if any(marker in payload for marker in _URGENT_MARKERS):
        return True
    if b"\\u" not in payload:
        return False
    # JSON escapes could spell "fall" without the bytes f-a-l-l: look properly.
    try:
        items = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return isinstance(items, list) and any(item_event(i) in URGENT for i in items)


def _validate(
    gateway: str, device: str, event: str, obj: Any, received_at: datetime, index: int | None
) -> Event:
    if not isinstance(obj, dict):
        raise Refused("not_an_object", f"{event} payload must be a JSON object")
    try:
        model = MODELS[event].model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        kind = (
            "out_of_range"
            if first["type"]
            in {
                "greater_than_equal",
                "less_than_equal",
                "too_long",
                "too_short",
            }
            else "invalid_field"
        )
        raise Refused(kind, f"{where}: {first['msg']}") from None
    data = model.model_dump(exclude={"msg_id", "ts"}, exclude_none=True)
    if event == "vitals":
        if not data:
            raise Refused("invalid_field", "vitals carry no reading")
        if any(isinstance(v, float) and not math.isfinite(v) for v in data.values()):
            raise Refused("out_of_range", "non-finite reading")
    flags: tuple[str, ...] = ()
    ahead = model.ts - received_at
    if ahead > device_events().ts_max_ahead:
        if event not in URGENT:
            raise Refused(TS_IN_FUTURE, f"ts is {ahead.total_seconds():.0f} s ahead of arrival")
        flags = (TS_IN_FUTURE,)
    return Event(gateway, device, event, model.msg_id, model.ts, data, flags, index)


@dataclass(frozen=True, slots=True)
class RefusedItem:
    """One bad item of a batch: refused alone, so it cannot take its neighbours with it."""

    index: int
    item: Any
    refused: Refused


def parse(
    topic: str, payload: bytes, *, received_at: datetime | None = None
) -> list[Event | RefusedItem] | Status:
    """Events carried by one MQTT message (several for ``…/batch``), or a gateway status.

    A malformed message raises ``Refused``; in a well-formed batch, each bad item comes back
    as a ``RefusedItem`` among the good events. ``received_at`` (default: now) is what a
    device timestamp is compared with."""
    received_at = received_at or datetime.now(UTC)
    if len(payload) > MAX_PAYLOAD:
        raise Refused("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD}")
    gateway, device, event = split_topic(topic)
    if event == "status":
        text = payload.decode("utf-8", "replace").strip().lower()
        if text not in ("online", "offline"):
            raise Refused("invalid_field", "status must be 'online' or 'offline'")
        return Status(gateway, text == "online")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Refused("malformed_json", str(exc)) from None
    if device is not None:
        return [_validate(gateway, device, event, obj, received_at, None)]
    if not isinstance(obj, list) or not obj:
        raise Refused("not_an_object", "a batch must be a non-empty JSON array")
    if len(obj) > MAX_BATCH:
        raise Refused("too_large", f"batch of {len(obj)} > {MAX_BATCH}")
    events: list[Event | RefusedItem] = []
    for index, item in enumerate(obj):
        try:
            events.append(_batch_item(gateway, item, received_at, index))
        except Refused as refused:
            events.append(RefusedItem(index, item, refused))
    return events


def _batch_item(gateway: str, item: Any, received_at: datetime, index: int) -> Event:
    if not isinstance(item, dict):
        raise Refused("not_an_object", "batch items must be objects")
    dev, ev = item.get("device_id"), item.get("event")
    if not isinstance(dev, str) or not isinstance(ev, str) or ev not in MODELS:
        raise Refused("invalid_field", "batch item needs device_id and a known event")
    return _validate(gateway, _check_id(dev, "device"), ev, item, received_at, index)


def item_event(item: Any) -> str | None:
    """The event a (possibly refused) batch item names, if it names one."""
    event = item.get("event") if isinstance(item, dict) else None
    return event if isinstance(event, str) else None
