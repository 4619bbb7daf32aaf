"""shared.money: integer fen, never float."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.money import MAX_FEN, fen_to_yuan, percent_of, split_fen, yuan_to_fen


@pytest.mark.parametrize(
    ("amount", "fen"),
    [
        ("12.34", 1234),
        ("0.01", 1),
        ("0.1", 10),
        ("5000", 500000),
        ("5000.00", 500000),
        (" 250 ", 25000),
        ("-3.50", -350),
        ("1e2", 10000),
        (250, 25000),
        (0, 0),
        (Decimal("1200.5"), 120050),
        (Decimal("0.010"), 1),
    ],
)
def test_yuan_to_fen(amount, fen):
    assert yuan_to_fen(amount) == fen
    assert type(yuan_to_fen(amount)) is int


@pytest.mark.parametrize("amount", [0.1, 12.34, 1.0, float("nan")])
def test_float_refused(amount):
    with pytest.raises(TypeError):
        yuan_to_fen(amount)


@pytest.mark.parametrize("amount", ["0.001", "12.345", "1.005", Decimal("0.0001"), "1e-3"])
def test_sub_fen_precision_refused(amount):
    with pytest.raises(ValueError, match="precision"):
        yuan_to_fen(amount)


@pytest.mark.parametrize("amount", ["", "abc", "12,34", "NaN", "Infinity", "-inf", "sNaN", "xx"])
def test_not_an_amount(amount):
    with pytest.raises(ValueError, match="not an amount"):
        yuan_to_fen(amount)


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "0.00"), (1, "0.01"), (10, "0.10"), (1234, "12.34"), (-5, "-0.05"), (-1234, "-12.34")],
)
def test_fen_to_yuan(fen, text):
    assert fen_to_yuan(fen) == text


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_round_trip(fen):
    text = fen_to_yuan(fen)
    assert yuan_to_fen(text) == fen
    assert yuan_to_fen(Decimal(text)) == fen


@given(st.integers(min_value=-MAX_FEN, max_value=MAX_FEN))
def test_whole_yuan_ints(yuan):
    assert yuan_to_fen(yuan) == yuan * 100


def test_huge_amounts_not_silently_rounded():
    fen = 123456789012345678901234567891
    with contextlib.suppress(ValueError):  # refusing would be acceptable; a wrong value is not
        assert yuan_to_fen(fen_to_yuan(fen)) == fen
    with pytest.raises(ValueError):
        yuan_to_fen("1234567890123456789012345678.001")


def test_split_fen_examples():
    assert split_fen(100, 3) == [34, 33, 33]
    assert split_fen(5, 5) == [1, 1, 1, 1, 1]
    assert split_fen(2, 4) == [1, 1, 0, 0]
    assert split_fen(0, 2) == [0, 0]
    assert split_fen(-5, 2) == [-2, -3]


@pytest.mark.parametrize("parts", [0, -1])
def test_split_fen_parts_positive(parts):
    with pytest.raises(ValueError):
        split_fen(100, parts)


@given(st.integers(-(10**12), 10**12), st.integers(1, 200))
def test_split_fen_property(total, parts):
    shares = split_fen(total, parts)
    assert len(shares) == parts
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1
    assert all(type(s) is int for s in shares)
    assert shares == sorted(shares, reverse=True)


@pytest.mark.parametrize(
    ("fen", "percent", "expected"),
    [
        (10000, "50", 5000),
        (1, "50", 1),  # 0.5 → 1
        (3, "50", 2),  # 1.5 → 2
        (5, "50", 3),  # 2.5 → 3 (half-up, not banker's 2)
        (1, "49.9", 0),  # 0.499 → 0
        (100, "0.5", 1),  # 0.5 → 1
        (300000, Decimal("33.33"), 99990),
        (999, "10", 100),  # 99.9 → 100
        (994, "10", 99),  # 99.4 → 99
        (-1, "50", -1),  # half away from zero
        (12345, "0", 0),
        (12345, "100", 12345),
    ],
)
def test_percent_of(fen, percent, expected):
    assert percent_of(fen, percent) == expected
    assert type(percent_of(fen, percent)) is int
