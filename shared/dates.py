"""Dates and timestamps in requests: ISO 8601 text, nothing else.

pydantic's lax mode also reads a number as a Unix timestamp (``since=0.5`` → 1970-01-01),
which no client means and no OpenAPI ``format: date``/``date-time`` promises. These types
accept exactly what the document says: ``YYYY-MM-DD`` for a date, RFC 3339 with an offset for
a timestamp (a local time is ambiguous: 422 naming the field). Python ``date``/``datetime``
objects pass (service code and seeds build requests in-process).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, WithJsonSchema

from shared.i18n import T

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}.*")
_WALL_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?$"


def _text_only(value: Any, pattern: re.Pattern[str], message: T) -> Any:
    if isinstance(value, date | datetime | time):
        return value
    if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
        raise ValueError(message)
    return value.strip()


def iso_date(value: Any) -> Any:
    return _text_only(value, _DATE, T("应为日期 YYYY-MM-DD", "must be a date, YYYY-MM-DD"))


def iso_datetime(value: Any) -> Any:
    return _text_only(
        value,
        _DATETIME,
        T(
            "应为带时区偏移的时间（RFC 3339，如 2026-05-01T08:00:00+08:00）",
            "must be an RFC 3339 date-time with an offset (e.g. 2026-05-01T08:00:00+08:00)",
        ),
    )


IsoDate = Annotated[date, BeforeValidator(iso_date)]
"""A date in a request: ``YYYY-MM-DD`` only."""

IsoDateTime = Annotated[AwareDatetime, BeforeValidator(iso_datetime)]
"""A timestamp in a request: RFC 3339 with an offset only."""


def wall_clock(value: Any) -> Any:
    return _text_only(
        value,
        re.compile(_WALL_CLOCK),
        T(
            "应为不带时区的时刻 HH:MM（上海时间）",
            "must be a time of day, HH:MM, without an offset",
        ),
    )


WallClock = Annotated[
    time,
    BeforeValidator(wall_clock),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _WALL_CLOCK,
            "examples": ["09:30", "09:30:00"],
            "description": "a time of day on the Asia/Shanghai wall clock, without an offset",
        }
    ),
]
"""A time of day (a plan's start): wall-clock time in Asia/Shanghai. JSON Schema's
``format: time`` means RFC 3339 ``full-time``, which requires an offset: it does not fit."""
