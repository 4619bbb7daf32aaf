"""Composite cursors over the event store: round trip, and anything else is a 422."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.telemetry.events import cursor
from shared.errors import Unprocessable

times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(
    kind=st.sampled_from(["vitals", "device"]),
    ts=times,
    device_id=st.text(
        st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=64
    ),
    msg_id=st.text(
        st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
        min_size=1,
        max_size=64,
    ),
    received_at=st.none() | times,
    skip=st.integers(0, 15),
)
def test_round_trip(kind, ts, device_id, msg_id, received_at, skip):
    position = cursor.Position(kind, ts, device_id, msg_id, received_at, skip)
    encoded = cursor.encode(position)
    assert len(encoded) <= 512 and "=" not in encoded
    assert cursor.decode(encoded, kind) == position


def test_no_cursor_is_the_first_page():
    assert cursor.decode(None, "vitals") is None and cursor.decode("", "vitals") is None


@pytest.mark.parametrize(
    "bad",
    [
        "@@@",
        base64.urlsafe_b64encode(b"[1,2]").decode(),
        base64.urlsafe_b64encode(b'["vitals",1,"d","m",null,99]').decode(),
        base64.urlsafe_b64encode(b'["vitals","x","d","m",null,0]').decode(),
        base64.urlsafe_b64encode(b'["vitals",1,2,"m",null,0]').decode(),
        base64.urlsafe_b64encode(b'["vitals",1e400,"d","m",null,0]').decode(),
        base64.urlsafe_b64encode(b'["vitals",99999999999999999999,"d","m",null,0]').decode(),
        cursor.encode(cursor.Position("device", datetime.now(UTC), "d", "m")),  # another list's
        cursor.encode(cursor.Position("vitals", datetime.now(UTC), "d", "m\x00")),  # NUL
        cursor.encode(cursor.Position("vitals", datetime.now(UTC), "d" * 65, "m")),
    ],
)
def test_anything_else_is_refused_naming_the_cursor(bad):
    with pytest.raises(Unprocessable) as refused:
        cursor.decode(bad, "vitals")
    assert [e["field"] for e in refused.value.errors] == ["cursor"]
