"""shared.uow: NUL characters found at the input, with the field that holds them."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from shared.uow import body_nul_fields, nul_fields, nul_problem

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)


def test_fields_are_named_by_their_path():
    body = orjson.dumps({"a": "ok", "b": {"c": ["x", "y\x00"]}, "d\x00": 1})
    assert body_nul_fields(body) == ["b.c.1", "d\\0"]
    assert body_nul_fields(orjson.dumps("\x00")) == ["body"]


def test_escaped_backslash_is_text_and_broken_json_is_left_to_the_route():
    assert body_nul_fields(b'{"a": "\\\\u0000"}') == []  # a backslash, then "u0000"
    assert body_nul_fields(b'{"a": "\\u0000"') == []  # not JSON: the route says so


def test_integers_past_64_bits_do_not_hide_a_nul():
    big = b'{"n": 123456789012345678901234567890, "s": ' + b'"a\\u0000"}'
    assert body_nul_fields(big) == ["s"]
    assert body_nul_fields(big.replace(b"\\u", b"\\\\u")) == []  # escaped backslash


def test_query_and_path():
    scope = {"path": "/v1/x", "query_string": b"a=1&kind=x%00y&b=%00"}
    assert nul_fields(scope) == ["kind", "b"]
    assert nul_fields({"path": "/v1/a\x00", "query_string": b""}) == ["path"]
    assert nul_fields({"path": "/v1/a", "query_string": b"x=%41"}) == []


def test_the_problem_names_every_field():
    body = nul_problem(["name", "note"]).body()
    assert body["status"] == 422
    assert [e["field"] for e in body["errors"]] == ["name", "note"]


@given(json_values)
def test_clean_bodies_pass(value):
    assert body_nul_fields(orjson.dumps(value)) == []


@given(json_values, st.data())
def test_a_nul_anywhere_is_found(value, data):
    poisoned = {"wrap": value, "x": data.draw(texts) + "\x00"}
    assert "x" in body_nul_fields(orjson.dumps(poisoned))
