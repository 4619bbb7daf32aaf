"""shared.ids: unified social credit codes (GB 32100-2015)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.ids import credit_code_check_char, validate_credit_code

# These tests match on the English wording; both languages: test_i18n, test_errors.
pytestmark = pytest.mark.usefixtures("english")

CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

# Published codes of well-known companies.
REAL_CODES = [
    "91330100716105852F",
    "9144030071526726XG",
    "914403001922038216",
    "91110000600037341L",
]


def hand_check(first17: str) -> str:
    total = sum(CHARS.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHARS[(31 - total % 31) % 31]


def test_weights_are_powers_of_three_mod_31():
    assert [pow(3, i, 31) for i in range(17)] == list(WEIGHTS)


def test_check_char_by_hand_for_a_real_code():
    # 9*1+1*3+3*9+3*27+0+1*26+0+0+7*20+1*29+6*25+1*13+0+5*24+8*10+5*30+2*28 = 884
    first17 = "91330100716105852"
    total = sum(CHARS.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    assert total == 884
    assert 31 - 884 % 31 == 15
    assert CHARS[15] == "F"
    assert credit_code_check_char(first17) == "F"


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_codes_valid(code):
    assert validate_credit_code(code) == code


def test_lowercase_and_whitespace_normalised():
    assert validate_credit_code("  9144030071526726xg\t") == "9144030071526726XG"


def test_remainder_zero_maps_to_zero():
    # total % 31 == 0 → check char "0", not CHARS[31]
    assert credit_code_check_char("0" * 17) == "0"
    assert validate_credit_code("0" * 18) == "0" * 18


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("9133010071610585", "18 characters"),
        ("91330100716105852FF", "18 characters"),
        ("91330100716105852I", "outside"),
        ("9133010071610585OF", "outside"),
        ("9133010071610585ZF", "outside"),
        ("9133010071610585SF", "outside"),
        ("9133010071610585VF", "outside"),
        ("9133010071610585-F", "outside"),
        ("91330100716105852E", "check character"),
        ("91330100716105853F", "check character"),
    ],
)
def test_invalid_codes(code, message):
    with pytest.raises(ValueError, match=message):
        validate_credit_code(code)


@st.composite
def valid_codes(draw) -> str:
    body = draw(st.text(CHARS, min_size=17, max_size=17))
    return body + hand_check(body)


@given(valid_codes())
def test_constructed_codes_pass(code):
    assert validate_credit_code(code) == code
    assert validate_credit_code(code.lower()) == code


@given(valid_codes(), st.integers(0, 17), st.data())
def test_single_char_mutation_fails(code, pos, data):
    new = data.draw(st.sampled_from([c for c in CHARS if c != code[pos]]))
    mutated = code[:pos] + new + code[pos + 1 :]
    with pytest.raises(ValueError, match="check character"):
        validate_credit_code(mutated)


@given(st.text(max_size=25))
def test_arbitrary_text_raises_only_value_error(raw):
    try:
        code = validate_credit_code(raw)
    except ValueError:
        return
    assert len(code) == 18
    assert set(code) <= set(CHARS)
    assert hand_check(code[:17]) == code[17]
