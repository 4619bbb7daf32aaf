"""Topics and payload bytes of the telemetry contract, and the garbage a broken device sends.

Everything here is a pure function of its arguments (randomness comes in as a
``random.Random``), so the stream stays deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

import orjson

from services.emulator.options import LOCAL_TZ

PREFIX = "eldercare/v1"
MAX_PAYLOAD_BYTES = 64 * 1024  # what the ingest accepts; the oversized garbage exceeds it

# Contract ranges (inclusive): the ingest refuses values outside them.
VITAL_RANGES: dict[str, tuple[float, float]] = {
    "heart_rate": (20, 250),
    "resp_rate": (0, 80),
    "spo2": (50, 100),
    "systolic": (50, 260),
    "diastolic": (30, 160),
    "temp_c": (30.0, 45.0),
}
INT_VITALS = frozenset(VITAL_RANGES) - {"temp_c"}


def device_topic(gateway_id: str, device_id: str, event: str) -> str:
    return f"{PREFIX}/{gateway_id}/{device_id}/{event}"


def status_topic(gateway_id: str) -> str:
    return f"{PREFIX}/{gateway_id}/status"


def batch_topic(gateway_id: str) -> str:
    return f"{PREFIX}/{gateway_id}/batch"


def format_ts(epoch: float) -> str:
    """RFC 3339 in local time with milliseconds: ``2026-11-26T08:00:00.123+08:00``."""
    return datetime.fromtimestamp(epoch, LOCAL_TZ).isoformat(timespec="milliseconds")


def encode(obj: object) -> bytes:
    return orjson.dumps(obj)


def clamp_vital(name: str, value: float) -> int | float:
    """Clip into the contract range; integers for everything but temperature."""
    low, high = VITAL_RANGES[name]
    value = min(max(value, low), high)
    return round(value, 1) if name not in INT_VITALS else round(value)


# --- garbage -----------------------------------------------------------------------------
# Each generator returns (topic, payload) on the gateway's own topics: a device with broken
# firmware, not an intruder (the broker ACL would stop those).

GarbageFn = Callable[[random.Random, str, str, float], tuple[str, bytes]]


def _malformed_json(rng: random.Random, gw: str, dev: str, at: float) -> tuple[str, bytes]:
    whole = encode({"msg_id": f"{dev}-x{rng.randrange(10**9)}", "ts": format_ts(at), "battery": 5})
    cut = rng.randrange(1, len(whole) - 1)  # a truncated write: never a complete object
    return device_topic(gw, dev, "heartbeat"), whole[:cut]


def _wrong_types(rng: random.Random, gw: str, dev: str, at: float) -> tuple[str, bytes]:
    body = rng.choice(
        [
            {"msg_id": f"{dev}-x{rng.randrange(10**9)}", "ts": format_ts(at), "heart_rate": "72"},
            {"msg_id": rng.randrange(10**9), "ts": format_ts(at), "resp_rate": 14},
            {"msg_id": f"{dev}-x{rng.randrange(10**9)}", "ts": at, "spo2": 97},
            {"msg_id": f"{dev}-x{rng.randrange(10**9)}", "ts": format_ts(at), "spo2": [97]},
        ]
    )
    return device_topic(gw, dev, "vitals"), encode(body)


def _out_of_range(rng: random.Random, gw: str, dev: str, at: float) -> tuple[str, bytes]:
    field, value = rng.choice(
        [("heart_rate", 400), ("heart_rate", 0), ("spo2", 140), ("temp_c", 55.5), ("systolic", 9)]
    )
    body = {"msg_id": f"{dev}-x{rng.randrange(10**9)}", "ts": format_ts(at), field: value}
    return device_topic(gw, dev, "vitals"), encode(body)


def _unknown_device(rng: random.Random, gw: str, dev: str, at: float) -> tuple[str, bytes]:
    ghost = f"{gw}-ghost{rng.randrange(1000):03d}"
    body = {"msg_id": f"{ghost}-1", "ts": format_ts(at), "battery": 80, "rssi": -60}
    return device_topic(gw, ghost, "heartbeat"), encode(body)


def _oversized(rng: random.Random, gw: str, dev: str, at: float) -> tuple[str, bytes]:
    body = {
        "msg_id": f"{dev}-x{rng.randrange(10**9)}",
        "ts": format_ts(at),
        "heart_rate": 70,
        "debug": "A" * (MAX_PAYLOAD_BYTES + rng.randrange(1, 4096)),
    }
    return device_topic(gw, dev, "vitals"), encode(body)


def _missing_fields(rng: random.Random, gw: str, dev: str, at: float) -> tuple[str, bytes]:
    body = rng.choice([{"ts": format_ts(at), "battery": 90}, {"msg_id": f"{dev}-x1", "rssi": -50}])
    return device_topic(gw, dev, "heartbeat"), encode(body)


def _not_an_object(rng: random.Random, gw: str, dev: str, at: float) -> tuple[str, bytes]:
    return device_topic(gw, dev, "heartbeat"), encode([rng.randrange(100), "heartbeat"])


GARBAGE: dict[str, GarbageFn] = {
    "malformed_json": _malformed_json,
    "wrong_types": _wrong_types,
    "out_of_range": _out_of_range,
    "unknown_device": _unknown_device,
    "oversized": _oversized,
    "missing_fields": _missing_fields,
    "not_an_object": _not_an_object,
}


def garbage(
    rng: random.Random, gateway_id: str, device_id: str, at: float
) -> tuple[str, str, bytes]:
    """A random kind of garbage: (reason, topic, payload)."""
    reason = rng.choice(sorted(GARBAGE))
    topic, payload = GARBAGE[reason](rng, gateway_id, device_id, at)
    return reason, topic, payload
