"""The service rule of a home care bed for one month, as a plain function (000 篇一: ≥ 1 h
every day, ≥ 30 h a month, ≥ 3 kinds of daily-living items). A bed that starts (or ends)
inside the month owes the monthly hours pro rata to its days of service."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from services.dispatch.policy import Compliance
from shared.i18n import T


@dataclass(frozen=True)
class Reason:
    """Why a bed falls short: a stable code and the text for people (zh/en)."""

    code: str
    message: T


@dataclass(frozen=True)
class MonthResult:
    days_in_period: int
    minutes_delivered: int
    hours_delivered: float
    required_hours: float
    days_with_minimum: int
    days_short: list[date]
    daily_living_kinds: list[str]
    monthly_hours_met: bool
    daily_minimum_met: bool
    daily_living_kinds_met: bool
    compliant: bool
    reasons: list[Reason] = field(default_factory=list)


def period(
    month: date, started_on: date | None, ended_on: date | None, today: date
) -> tuple[date, date] | None:
    """The days of ``month`` the bed was in service, up to yesterday (today is not over)."""
    first = month.replace(day=1)
    last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    start = max(first, started_on or first)
    end = min(last, ended_on or last, today - timedelta(days=1))
    return (start, end) if start <= end else None


def evaluate(
    rules: Compliance,
    *,
    month: date,
    days: tuple[date, date] | None,
    minutes_by_day: dict[date, int],
    daily_living_done: Iterable[str],
) -> MonthResult:
    days_in_month = calendar.monthrange(month.year, month.month)[1]
    if days is None:
        span: list[date] = []
    else:
        span = [days[0] + timedelta(days=k) for k in range((days[1] - days[0]).days + 1)]
    minutes = sum(minutes_by_day.values())  # every verified minute of the month counts
    short = [d for d in span if minutes_by_day.get(d, 0) < rules.daily_minutes]
    required = round(rules.monthly_hours * len(span) / days_in_month, 2)
    kinds = sorted(set(daily_living_done))
    hours = round(minutes / 60.0, 2)
    hours_met = hours >= required
    daily_met = not short
    kinds_met = len(kinds) >= rules.daily_living_kinds or not span
    reasons = []
    if not hours_met:
        reasons.append(
            Reason(
                "monthly_hours",
                T(
                    f"本月服务 {hours} 小时，少于应达的 {required} 小时",
                    f"{hours} h delivered this month, {required} h required",
                ),
            )
        )
    if not daily_met:
        reasons.append(
            Reason(
                "daily_minimum",
                T(
                    f"{len(short)} 天的服务不足 {rules.daily_minutes} 分钟",
                    f"{len(short)} day(s) under {rules.daily_minutes} minutes",
                ),
            )
        )
    if not kinds_met:
        reasons.append(
            Reason(
                "daily_living_kinds",
                T(
                    f"生活照料项目 {len(kinds)} 种，少于 {rules.daily_living_kinds} 种",
                    f"{len(kinds)} daily-living kind(s), {rules.daily_living_kinds} required",
                ),
            )
        )
    return MonthResult(
        days_in_period=len(span),
        minutes_delivered=minutes,
        hours_delivered=hours,
        required_hours=required,
        days_with_minimum=len(span) - len(short),
        days_short=short,
        daily_living_kinds=kinds,
        monthly_hours_met=hours_met,
        daily_minimum_met=daily_met,
        daily_living_kinds_met=kinds_met,
        compliant=hours_met and daily_met and kinds_met,
        reasons=reasons,
    )
