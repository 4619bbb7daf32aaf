"""Cursors over the event store: a reading's position in a time-ordered list, opaque to clients.

The event table has no single sequential key (it is partitioned by arrival time and keyed by
``(received_at, device_id, msg_id)``), so a position is the composite sort key of the next
row to return, plus how many of that row's FHIR Observations an earlier page already carried
(a reading with five vital signs may straddle two pages when ``limit`` counts Observations).
Encoded as base64url JSON; ``kind`` stops a cursor of one list being replayed on another.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
from fastapi import Query

from shared.errors import Unprocessable
from shared.i18n import T

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CursorParam = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page")
]


@dataclass(frozen=True, slots=True)
class Position:
    kind: str  # "vitals" | "device"
    ts: datetime  # the list's time key: device time (vitals) or arrival time (device events)
    device_id: str
    msg_id: str
    received_at: datetime | None = None  # vitals: last tie-breaker (a reading stored twice)
    skip: int = 0  # FHIR: Observations of this reading already on an earlier page


def _micros(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(microseconds=1)


def _from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def encode(position: Position) -> str:
    raw = orjson.dumps(
        [
            position.kind,
            _micros(position.ts),
            position.device_id,
            position.msg_id,
            None if position.received_at is None else _micros(position.received_at),
            position.skip,
        ]
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, kind: str) -> Position | None:
    """The position a cursor names, ``None`` without one; 422 naming ``cursor`` otherwise."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        k, ts, device_id, msg_id, received, skip = orjson.loads(raw)
        if k != kind or not isinstance(device_id, str) or not isinstance(msg_id, str):
            raise ValueError("not a cursor of this list")
        if len(device_id) > 64 or len(msg_id) > 64 or "\x00" in device_id + msg_id:
            raise ValueError("not an id the store holds")  # PostgreSQL text has no NUL
        if not isinstance(skip, int) or isinstance(skip, bool) or not 0 <= skip < 16:
            raise ValueError("bad skip")
        if not isinstance(ts, int) or (received is not None and not isinstance(received, int)):
            raise ValueError("bad time")
        return Position(
            kind=k,
            ts=_from_micros(ts),
            device_id=device_id,
            msg_id=msg_id,
            received_at=None if received is None else _from_micros(received),
            skip=skip,
        )
    except (ValueError, TypeError, binascii.Error, OverflowError, orjson.JSONDecodeError) as exc:
        raise Unprocessable(
            T("分页游标无效", "cursor is not valid"),
            errors=[("cursor", T("不是此列表的分页游标", "not a cursor of this list"))],
        ) from exc
