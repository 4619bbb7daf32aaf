"""shared.calendar: working days with exceptions (holidays and 调休 make-up days)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.calendar import (
    add_working_days,
    cn_exceptions,
    default_is_working,
    is_working_day,
    working_days_between,
)

# A fake week: Wed 2025-10-01 .. Fri 10-03 holidays, Sat 2025-10-11 make-up working day.
FAKE = {
    date(2025, 10, 1): False,
    date(2025, 10, 2): False,
    date(2025, 10, 3): False,
    date(2025, 10, 11): True,
}


def fake(day: date) -> bool:
    return is_working_day(day, FAKE)


def test_default_is_working():
    assert default_is_working(date(2025, 6, 13))  # Friday
    assert not default_is_working(date(2025, 6, 14))  # Saturday
    assert not default_is_working(date(2025, 6, 15))  # Sunday
    assert default_is_working(date(2025, 6, 16))  # Monday


def test_is_working_day_exceptions_override_weekday():
    assert not is_working_day(date(2025, 10, 1), FAKE)  # Wednesday holiday
    assert is_working_day(date(2025, 10, 11), FAKE)  # Saturday make-up
    assert not is_working_day(date(2025, 10, 12), FAKE)  # plain Sunday
    assert is_working_day(date(2025, 10, 6), FAKE)  # plain Monday
    assert not is_working_day(date(2025, 10, 6), {date(2025, 10, 6): False})


def test_add_working_days_plain_week():
    assert add_working_days(date(2025, 6, 13), 1, default_is_working) == date(2025, 6, 16)
    assert add_working_days(date(2025, 6, 14), 1, default_is_working) == date(2025, 6, 16)
    assert add_working_days(date(2025, 6, 16), 5, default_is_working) == date(2025, 6, 23)
    assert add_working_days(date(2025, 6, 16), 10, default_is_working) == date(2025, 6, 30)


def test_add_working_days_zero_and_negative():
    start = date(2025, 6, 14)  # a Saturday: n=0 is the start itself
    assert add_working_days(start, 0, default_is_working) == start
    with pytest.raises(ValueError):
        add_working_days(start, -1, default_is_working)


def test_add_working_days_over_holiday():
    # Tue 09-30 + 1 → skip Wed-Fri holidays and the weekend → Mon 10-06.
    assert add_working_days(date(2025, 9, 30), 1, fake) == date(2025, 10, 6)
    # Mon 10-06..Fri 10-10 are 5 working days; the 6th is the make-up Saturday 10-11.
    assert add_working_days(date(2025, 9, 30), 6, fake) == date(2025, 10, 11)
    assert add_working_days(date(2025, 9, 30), 7, fake) == date(2025, 10, 13)


def test_working_days_between():
    assert working_days_between(date(2025, 9, 30), date(2025, 10, 5), fake) == 0
    assert working_days_between(date(2025, 9, 30), date(2025, 10, 6), fake) == 1
    assert working_days_between(date(2025, 9, 30), date(2025, 10, 12), fake) == 6
    assert working_days_between(date(2025, 9, 29), date(2025, 9, 30), fake) == 1
    assert working_days_between(date(2025, 9, 30), date(2025, 9, 30), fake) == 0
    assert working_days_between(date(2025, 10, 6), date(2025, 9, 30), fake) == 0


def test_cn_exceptions_2025():
    ex = cn_exceptions([2025])
    assert ex[date(2025, 10, 1)][0] is False  # National Day, a Wednesday
    assert ex[date(2025, 1, 1)][0] is False
    assert ex[date(2025, 9, 28)][0] is True  # Sunday make-up day
    assert ex[date(2025, 1, 26)][0] is True  # Sunday make-up day (Spring Festival)
    assert ex[date(2025, 2, 8)][0] is True  # Saturday make-up day
    # Only exceptions: holidays on weekends are not listed, plain weekdays are not listed.
    assert date(2025, 10, 4) not in ex  # Saturday inside the Golden Week
    assert date(2025, 6, 16) not in ex
    for day, (working, name) in ex.items():
        assert working != default_is_working(day), day
        assert name


def test_cn_calendar_deadline_over_golden_week():
    ex = {d: w for d, (w, _) in cn_exceptions([2025]).items()}
    # Thu 2025-09-25 + 3 working days: Fri 26, Sun 28 (make-up), Mon 29.
    assert add_working_days(date(2025, 9, 25), 3, lambda d: is_working_day(d, ex)) == date(
        2025, 9, 29
    )
    # Tue 09-30 + 1: holidays 10-01..10-08, then Thu 10-09.
    assert add_working_days(date(2025, 9, 30), 1, lambda d: is_working_day(d, ex)) == date(
        2025, 10, 9
    )


_CN = {d: w for d, (w, _) in cn_exceptions([2024, 2025, 2026]).items()}


@pytest.mark.parametrize("calendar", ["fake", "cn"])
@given(start=st.dates(date(2024, 1, 1), date(2025, 12, 31)), n=st.integers(1, 40))
def test_add_then_count_property(calendar, start, n):
    exceptions = FAKE if calendar == "fake" else _CN

    def working(d: date) -> bool:
        return is_working_day(d, exceptions)

    result = add_working_days(start, n, working)
    assert result > start
    assert working(result)
    assert working_days_between(start, result, working) == n
    assert working_days_between(start, result - timedelta(days=1), working) == n - 1
