"""The working-day calendar (``common.calendar_days``): read by everyone, edited by admins
for years the ``holidays`` package does not know yet (the State Council publishes each
year's schedule in November)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from starlette.convertors import Convertor, register_url_convertor

from services.registry.calendar.schemas import CalendarDayRead, CalendarDayUpdate, DeadlineRead
from shared import calendar
from shared.auth import Principal, Role, StaffReader, platform_wide, require_roles
from shared.dates import IsoDate
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep


class _DayConvertor(Convertor[str]):
    """``{day:day}`` matches only ``YYYY-MM-DD``, so ``/v1/calendar/deadline`` is never taken
    for a day: a PUT there is a 405 naming GET, not a 422 about a date."""

    regex = "[0-9]{4}-[0-9]{2}-[0-9]{2}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("day", _DayConvertor())

router = APIRouter(prefix="/v1/calendar", tags=["calendar"])

Admin = require_roles(Role.admin)
Reader = StaffReader


@router.get(
    "",
    response_model=Page[CalendarDayRead],
    summary="Exceptions to Mon–Fri in a year, by day: holidays and make-up working days",
)
async def list_days(
    session: SessionDep,
    year: Annotated[int, Query(ge=2000, le=2100)],
    principal: Principal = Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[CalendarDayRead]:
    day = calendar.CalendarDay.day
    stmt = select(calendar.CalendarDay).where(day.between(date(year, 1, 1), date(year, 12, 31)))
    page = await paginate(session, stmt, key=day, cursor=cursor, limit=limit)
    return Page[CalendarDayRead](
        items=[CalendarDayRead.model_validate(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.put("/{day:day}", response_model=CalendarDayRead, summary="Set one day (admins)")
async def set_day(
    day: IsoDate, day_in: CalendarDayUpdate, session: SessionDep, principal: Principal = Admin
) -> CalendarDayRead:
    platform_wide(principal)  # one calendar sets every region's deadlines
    values = {"day": day, "is_working": day_in.is_working, "name": day_in.name, "source": "admin"}
    stmt = (
        insert(calendar.CalendarDay)
        .values(values)
        .on_conflict_do_update(
            index_elements=["day"], set_={k: v for k, v in values.items() if k != "day"}
        )
    )
    await session.execute(stmt)
    return CalendarDayRead(**values)


@router.get(
    "/deadline",
    response_model=DeadlineRead,
    summary="The Nth working day after a start date (review deadlines)",
)
async def deadline(
    session: SessionDep,
    start: Annotated[IsoDate, Query(description="the day the count starts after")],
    working_days: Annotated[int, Query(ge=0, le=365)],
    principal: Principal = Reader,
) -> DeadlineRead:
    due = await calendar.deadline(session, start, working_days)
    return DeadlineRead(start=start, working_days=working_days, deadline=due)
