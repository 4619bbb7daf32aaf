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
from shared.i18n import T

MAX_OCCURRENCES = 400
INSERT_CHUNK = 2000  # rows per INSERT (PostgreSQL caps a statement at 65 535 parameters)


def parse_rule(text: str, dtstart: datetime):
    """The rule, or ValueError; more often than daily makes no sense for home visits."""
    rule = rrulestr(text, dtstart=dtstart)
    if getattr(rule, "_freq", DAILY) > DAILY:
        raise ValueError(
            str(
                T(
                    "最多每天一次（FREQ=DAILY、WEEKLY、MONTHLY 或 YEARLY）",
                    "at most daily (FREQ=DAILY, WEEKLY, MONTHLY or YEARLY)",
                )
            )
        )
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


def _since(plan: Plan, today: date) -> date:
    return max(today, plan.valid_from, (plan.generated_until or date.min) + timedelta(days=1))


def _rows(
    plan: Plan, *, since: date, until: date, is_working: Callable[[date], bool] | None
) -> list[dict]:
    days = occurrences(
        plan.rrule,
        start_time=plan.start_time,
        valid_from=plan.valid_from,
        valid_to=plan.valid_to,
        since=since,
        until=until,
        is_working=is_working if plan.working_days_only else None,
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
    return rows


async def _generate(session: AsyncSession, plans: list[Plan], *, until: date, today: date) -> int:
    """Visits of these plans up to ``until``: one calendar read, one INSERT for all of them
    (an occurrence made before is skipped by its unique (plan_id, planned_start))."""
    todo = [(p, _since(p, today)) for p in plans if p.active and _since(p, today) <= until]
    if not todo:
        return 0
    is_working = None
    if any(p.working_days_only for p, _ in todo):
        exceptions = await calendar.load_exceptions(session, min(since for _, since in todo), until)
        is_working = lambda d: calendar.is_working_day(d, exceptions)  # noqa: E731
    rows = [
        r for p, since in todo for r in _rows(p, since=since, until=until, is_working=is_working)
    ]
    made = 0
    for k in range(0, len(rows), INSERT_CHUNK):
        result = await session.execute(
            insert(Visit)
            .values(rows[k : k + INSERT_CHUNK])
            .on_conflict_do_nothing(constraint="uq_visits_plan_occurrence")
            .returning(Visit.id)
        )
        made += len(result.all())
    for p, _ in todo:
        p.generated_until = until
    await session.flush()
    return made


async def generate(
    *, session: AsyncSession, plan: Plan, until: date, today: date | None = None
) -> int:
    return await _generate(session, [plan], until=until, today=today or clock.today())


async def generate_all(*, session: AsyncSession, today: date | None = None) -> int:
    """Every active plan's visits up to the horizon, as one batch (the plan loop calls this;
    ``SKIP LOCKED`` lets several dispatch processes run it)."""
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
    return await _generate(session, plans, until=until, today=today)
