"""shared.pagination: opaque cursors."""

from __future__ import annotations

import uuid
from datetime import date
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import Unprocessable
from shared.i18n import current_lang
from shared.pagination import decode_cursor, encode_cursor, next_cursor

ID = uuid.UUID("0190a6e2-7c3b-7d4e-8f00-123456789abc")


def test_encode_is_unpadded_base64url():
    cursor = encode_cursor(ID)
    assert len(cursor) == 22
    assert "=" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor) == ID


@given(st.uuids())
def test_round_trip(value):
    assert decode_cursor(encode_cursor(value)) == value


@pytest.mark.parametrize("cursor", [None, ""])
def test_empty_cursor_is_first_page(cursor):
    assert decode_cursor(cursor) is None


@pytest.mark.parametrize("cursor", ["abc", "!!!!", "é", "AAAA", encode_cursor(ID) + "AAAA", "A"])
def test_garbage_cursor(cursor):
    with pytest.raises(Unprocessable) as info:
        decode_cursor(cursor)
    assert info.value.status == 422
    assert info.value.body()["errors"] == [{"field": "cursor", "message": "不是有效的分页游标"}]
    token = current_lang.set("en")
    try:
        assert info.value.body()["errors"] == [{"field": "cursor", "message": "not a cursor"}]
    finally:
        current_lang.reset(token)


@given(st.text(max_size=40))
def test_arbitrary_text_is_a_key_or_unprocessable(cursor):
    try:
        result = decode_cursor(cursor)
    except Unprocessable:
        return
    assert result is None or isinstance(result, uuid.UUID | int)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_round_trip_of_sequence_keys(value):
    assert decode_cursor(encode_cursor(value)) == value


def test_next_cursor():
    rows = [SimpleNamespace(id=uuid.UUID(int=i)) for i in range(4)]
    assert next_cursor(rows, 3) == encode_cursor(uuid.UUID(int=2))
    assert next_cursor(rows, 4) is None
    assert next_cursor(rows[:2], 3) is None
    assert next_cursor([{"k": 1}, {"k": 2}], 1, id_of=lambda r: uuid.UUID(int=r["k"])) == (
        encode_cursor(uuid.UUID(int=1))
    )


@given(st.dates(), st.uuids())
def test_compound_keys_round_trip(day, value):
    cursor = encode_cursor((day, value))
    assert decode_cursor(cursor, [date, uuid.UUID]) == (day, value)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_typed_int_keys_round_trip(value):
    assert decode_cursor(encode_cursor(value), [int]) == value


@pytest.mark.parametrize(
    ("cursor", "kinds"),
    [
        (encode_cursor(ID), [date, uuid.UUID]),  # 16 bytes for a 24-byte key
        (encode_cursor((date(2026, 1, 1), ID)), [uuid.UUID]),
        (encode_cursor(0), [date]),  # ordinal 0 is no date
        (encode_cursor(2**62), [date]),
    ],
)
def test_a_cursor_of_another_key_is_unprocessable(cursor, kinds):
    with pytest.raises(Unprocessable):
        decode_cursor(cursor, kinds)
