"""The MQTT wire contract (DESIGN.md "Telemetry contract"): topics and payloads, validated.

``parse`` turns (topic, payload bytes) into ``Event`` records or raises ``Refused`` with a
machine-readable reason; it never raises anything else, whatever the bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

PREFIX = "eldercare/v1/"
MAX_PAYLOAD = 64 * 1024
MAX_BATCH = 500
EVENTS = ("emergency", "fall", "vitals", "motion", "door", "bed", "heartbeat")
URGENT = frozenset({"emergency", "fall"})
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")

Number = StrictInt | StrictFloat


class Refused(Exception):
    """A message that cannot be stored; ``reason`` is the dead-letter category."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail[:500]


class _Base(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    msg_id: str = Field(min_length=1, max_length=64)
    ts: datetime


class Emergency(_Base):
    button: str = Field("main", max_length=32)


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
    room: str = Field(min_length=1, max_length=32)
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


def _validate(gateway: str, device: str, event: str, obj: Any) -> Event:
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
    if model.ts.tzinfo is None:
        raise Refused("invalid_field", "ts must carry a UTC offset (RFC 3339)")
    data = model.model_dump(exclude={"msg_id", "ts"}, exclude_none=True)
    if event == "vitals":
        if not data:
            raise Refused("invalid_field", "vitals carry no reading")
        if any(isinstance(v, float) and not math.isfinite(v) for v in data.values()):
            raise Refused("out_of_range", "non-finite reading")
    return Event(gateway, device, event, model.msg_id, model.ts.astimezone(UTC), data)


@dataclass(frozen=True, slots=True)
class RefusedItem:
    """One bad item of a batch: refused alone, so it cannot take its neighbours with it."""

    index: int
    item: Any
    refused: Refused


def parse(topic: str, payload: bytes) -> list[Event | RefusedItem] | Status:
    """Events carried by one MQTT message (several for ``…/batch``), or a gateway status.

    A malformed message raises ``Refused``; in a well-formed batch, each bad item comes back
    as a ``RefusedItem`` among the good events."""
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
        return [_validate(gateway, device, event, obj)]
    if not isinstance(obj, list) or not obj:
        raise Refused("not_an_object", "a batch must be a non-empty JSON array")
    if len(obj) > MAX_BATCH:
        raise Refused("too_large", f"batch of {len(obj)} > {MAX_BATCH}")
    events: list[Event | RefusedItem] = []
    for index, item in enumerate(obj):
        try:
            events.append(_batch_item(gateway, item))
        except Refused as refused:
            events.append(RefusedItem(index, item, refused))
    return events


def _batch_item(gateway: str, item: Any) -> Event:
    if not isinstance(item, dict):
        raise Refused("not_an_object", "batch items must be objects")
    dev, ev = item.get("device_id"), item.get("event")
    if not isinstance(dev, str) or not isinstance(ev, str) or ev not in MODELS:
        raise Refused("invalid_field", "batch item needs device_id and a known event")
    return _validate(gateway, _check_id(dev, "device"), ev, item)
