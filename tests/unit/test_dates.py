"""shared.dates: dates and timestamps in requests are ISO text, never numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.dates import IsoDate, IsoDateTime


class M(BaseModel):
    day: IsoDate | None = None
    at: IsoDateTime | None = None


@pytest.mark.parametrize(
    "value", [0, 1.5, "0", "0.5", "1700000000", "2026/01/01", "20260101", True]
)
def test_numbers_and_other_shapes_are_not_dates(value):
    with pytest.raises(ValidationError) as info:
        M(day=value)
    assert info.value.errors()[0]["loc"] == ("day",)


@pytest.mark.parametrize("value", [0, 1.5, "0.5", "1700000000", "2026-01-01", "yesterday"])
def test_numbers_and_dates_are_not_timestamps(value):
    with pytest.raises(ValidationError):
        M(at=value)


def test_a_timestamp_needs_an_offset():
    with pytest.raises(ValidationError) as info:
        M(at="2026-01-01T08:00:00")
    assert info.value.errors()[0]["type"] == "timezone_aware"
    assert M(at="2026-01-01T08:00:00+08:00").at == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert M(at="2026-01-01T00:00:00Z").at == datetime(2026, 1, 1, tzinfo=UTC)


@given(st.dates(min_value=date(1000, 1, 1)))
def test_iso_dates_round_trip(day):
    assert M(day=day.isoformat()).day == day
    assert M(day=day).day == day  # in-process callers pass date objects


def test_impossible_dates_are_refused():
    with pytest.raises(ValidationError):
        M(day="2026-02-30")


def test_a_wall_clock_time_is_text_without_an_offset():
    from datetime import time

    from pydantic import TypeAdapter, ValidationError

    from shared.dates import WallClock

    clock = TypeAdapter(WallClock)
    assert clock.validate_python("09:30") == time(9, 30)
    assert clock.validate_python("09:30:15") == time(9, 30, 15)
    # an offset would make the plan's times aware and the day's range naive; a number is
    # seconds to pydantic and nothing to a client
    for bad in ("09:30+08:00", "09:30Z", 0, 3600, "9:30", "24:00"):
        with pytest.raises(ValidationError):
            clock.validate_python(bad)
