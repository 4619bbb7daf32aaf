"""services.registry.vocabulary: the words people use → the API's codes."""

from __future__ import annotations

import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.registry import vocabulary
from services.registry.caregivers.schemas import Relation
from services.registry.orgs.schemas import StaffRole
from shared.i18n import current_lang


@pytest.mark.parametrize(("name", "enum"), [("relation", Relation), ("staff_role", StaffRole)])
def test_the_codes_are_exactly_the_enum(name, enum):
    assert set(vocabulary.codes(name)) == set(typing.get_args(enum))


@pytest.mark.parametrize("name", ["relation", "staff_role"])
def test_every_word_maps_to_one_code(name):
    table = vocabulary.lookup(name)  # raises if a word named two codes
    for code, words in vocabulary.words(name).items():
        assert vocabulary.to_code(name, code) == code
        for word in words:
            assert table[vocabulary.normalize(word)] == code


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Daughter-in-law", "daughter in law"),
        ("  SON_IN_LAW ", "son in law"),
        ("ｗｉｆｅ", "wife"),  # full-width, as Chinese input methods type it
        ("儿媳", "儿媳"),
        ("social   worker", "social worker"),
    ],
)
def test_normalize(raw, normal):
    assert vocabulary.normalize(raw) == normal


@given(st.text(max_size=40))
def test_any_text_is_a_code_or_a_value_error(text):
    try:
        code = vocabulary.to_code("relation", text)
    except ValueError as exc:
        message = exc.args[0]
        assert message.zh and message.en  # text for people in both languages
    else:
        assert code in vocabulary.codes("relation")


def test_unknown_word_lists_the_codes_in_both_languages():
    with pytest.raises(ValueError) as info:
        vocabulary.to_code("staff_role", "pilot")
    message = info.value.args[0]
    assert "caregiver" in message.zh and "无法识别" in message.zh
    token = current_lang.set("en")
    try:
        assert "not recognised" in str(message) and "social_worker" in str(message)
    finally:
        current_lang.reset(token)


def test_non_strings_pass_through_for_the_enum_to_refuse():
    assert vocabulary.to_code("relation", 3) == 3
