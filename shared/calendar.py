"""Working-day calendar: Mon–Fri work, except the days in ``common.calendar_days``.

The table holds only exceptions — public holidays that fall on weekdays (``is_working`` false)
and the make-up working days (调休) that fall on weekends (true) — seeded from the ``holidays``
package and editable by admins for years the package does not know yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, timedelta

import holidays
from sqlalchemy import Boolean, Date, String, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class CalendarDay(Base):
    __tablename__ = "calendar_days"
    __table_args__ = {"schema": "common"}

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_working: Mapped[bool] = mapped_column(Boolean, nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False, default="")
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="holidays")


def default_is_working(day: date) -> bool:
    return day.weekday() < 5


def is_working_day(day: date, exceptions: Mapping[date, bool]) -> bool:
    return exceptions.get(day, default_is_working(day))


def add_working_days(start: date, n: int, is_working: Callable[[date], bool]) -> date:
    """The Nth working day after ``start`` (``start`` itself never counts); n=0 → start."""
    if n < 0:
        raise ValueError("n must be >= 0")
    day, left = start, n
    while left:
        day += timedelta(days=1)
        if is_working(day):
            left -= 1
    return day


def working_days_between(start: date, end: date, is_working: Callable[[date], bool]) -> int:
    """Working days in (start, end]."""
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        count += is_working(day)
    return count


def cn_exceptions(years: Iterable[int]) -> dict[date, tuple[bool, str]]:
    """Exceptions to Mon–Fri for mainland China, from the ``holidays`` package."""
    cn = holidays.country_holidays("CN", years=list(years))
    out: dict[date, tuple[bool, str]] = {}
    for day, name in cn.items():
        if default_is_working(day):
            out[day] = (False, name)
    for day in getattr(cn, "weekend_workdays", ()):
        out[day] = (True, "调休上班 (make-up working day)")
    return out


async def seed_calendar(session: AsyncSession, years: Iterable[int]) -> int:
    """Insert package-derived exceptions; never overwrite an admin's edit."""
    rows = [
        {"day": d, "is_working": w, "name": n[:120], "source": "holidays"}
        for d, (w, n) in sorted(cn_exceptions(years).items())
    ]
    if not rows:
        return 0
    stmt = insert(CalendarDay).values(rows).on_conflict_do_nothing(index_elements=["day"])
    result = await session.execute(stmt)
    return result.rowcount or 0


async def load_exceptions(session: AsyncSession, start: date, end: date) -> dict[date, bool]:
    rows = await session.execute(
        select(CalendarDay.day, CalendarDay.is_working).where(
            CalendarDay.day >= start, CalendarDay.day <= end
        )
    )
    return {d: w for d, w in rows.all()}


async def deadline(session: AsyncSession, start: date, n: int) -> date:
    """``start`` + N working days, from the calendar table."""
    # Generous window: N working days never span more than ~2N + 30 calendar days in China.
    exceptions = await load_exceptions(session, start, start + timedelta(days=2 * n + 40))
    return add_working_days(start, n, lambda d: is_working_day(d, exceptions))
