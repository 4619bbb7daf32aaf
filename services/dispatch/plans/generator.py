"""Recurring plans → visits: occurrences of an RFC 5545 RRULE (python-dateutil) on the
Asia/Shanghai wall clock, working days only where the plan says so (``shared.calendar``),
generated ``horizon_days`` ahead. Generating twice creates nothing twice (the unique
(plan_id, planned_start))."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from dateutil.rrule import DAILY, rrulestr
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import policy as dispatch_policy
from services.dispatch.plans.models import Plan
from services.dispatch.visits.models import Visit
from shared import calendar, clock

MAX_OCCURRENCES = 400


def parse_rule(text: str, dtstart: datetime):
    """The rule, or ValueError; more often than daily makes no sense for home visits."""
    rule = rrulestr(text, dtstart=dtstart)
    if getattr(rule, "_freq", DAILY) > DAILY:
        raise ValueError("at most daily (FREQ=DAILY, WEEKLY, MONTHLY or YEARLY)")
    return rule


def occurrences(
    rule_text: str,
    *,
    start_time: time,
    valid_from: date,
    valid_to: date | None,
    since: date,
    until: date,
    is_working: Callable[[date], bool] | None = None,
) -> list[date]:
    """Days of the plan in [since, until] (and within its validity)."""
    rule = parse_rule(rule_text, datetime.combine(valid_from, start_time))
    lo = datetime.combine(max(since, valid_from), time.min)
    hi = datetime.combine(min(until, valid_to or until), time.max)
    if lo > hi:
        return []
    days = [dt.date() for dt in rule.between(lo, hi, inc=True)][:MAX_OCCURRENCES]
    if is_working is not None:
        days = [d for d in days if is_working(d)]
    return days


def slot(day: date, start_time: time, minutes: int) -> tuple[datetime, datetime]:
    start = datetime.combine(day, start_time, tzinfo=clock.SHANGHAI).astimezone(UTC)
    return start, start + timedelta(minutes=minutes)


async def generate(
    *, session: AsyncSession, plan: Plan, until: date, today: date | None = None
) -> int:
    today = today or clock.today()
    since = max(today, plan.valid_from, (plan.generated_until or date.min) + timedelta(days=1))
    if since > until or not plan.active:
        return 0
    is_working = None
    if plan.working_days_only:
        exceptions = await calendar.load_exceptions(session, since, until)
        is_working = lambda d: calendar.is_working_day(d, exceptions)  # noqa: E731
    days = occurrences(
        plan.rrule,
        start_time=plan.start_time,
        valid_from=plan.valid_from,
        valid_to=plan.valid_to,
        since=since,
        until=until,
        is_working=is_working,
    )
    rows = []
    for d in days:
        start, end = slot(d, plan.start_time, plan.duration_minutes)
        rows.append(
            {
                "bed_id": plan.bed_id,
                "elder_id": plan.elder_id,
                "org_id": plan.org_id,
                "station_id": plan.station_id,
                "staff_id": plan.staff_id,
                "plan_id": plan.id,
                "kind": "planned",
                "status": "planned",
                "planned_start": start,
                "planned_end": end,
                "items": plan.items,
                "items_done": [],
                "late": False,
            }
        )
    made = 0
    if rows:
        result = await session.execute(
            insert(Visit)
            .values(rows)
            .on_conflict_do_nothing(constraint="uq_visits_plan_occurrence")
            .returning(Visit.id)
        )
        made = len(result.all())
    plan.generated_until = until
    await session.flush()
    return made


async def generate_all(*, session: AsyncSession, today: date | None = None) -> int:
    today = today or clock.today()
    until = today + timedelta(days=dispatch_policy.load().horizon_days)
    plans = list(
        await session.scalars(
            select(Plan)
            .where(
                Plan.active.is_(True),
                or_(Plan.generated_until.is_(None), Plan.generated_until < until),
            )
            .with_for_update(skip_locked=True)
        )
    )
    made = 0
    for plan in plans:
        made += await generate(session=session, plan=plan, until=until, today=today)
    return made
