"""Compliance of beds with the service rule, from the verified visits (the same rows subsidy
redeems against: ``dispatch.verified_visits``); excluded visits are listed with their flags."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import directory
from services.dispatch import policy as dispatch_policy
from services.dispatch.catalogue import service as catalogue
from services.dispatch.compliance import rules
from services.dispatch.compliance.schemas import BedCompliance, Excluded, OrgCompliance
from services.dispatch.visits.models import Visit, VisitFlag
from shared import clock, scoping
from shared import readmodel as rm
from shared.auth import Principal
from shared.errors import NotFound
from shared.i18n import T
from shared.visits_readmodel import verified_visits as vv


def month_bounds(month: date) -> tuple[date, date]:
    nxt = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return month, nxt


async def _for_beds(session: AsyncSession, beds: list, month: date) -> list[BedCompliance]:
    policy = dispatch_policy.load()
    cat = await catalogue.load(session=session)
    first, nxt = month_bounds(month)
    ids = [b.id for b in beds]
    minutes: dict[uuid.UUID, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    kinds: dict[uuid.UUID, set[str]] = defaultdict(set)
    counts: dict[uuid.UUID, int] = defaultdict(int)
    if ids:
        rows = await session.execute(
            select(vv.c.bed_id, vv.c.service_day, vv.c.minutes, vv.c.item_codes).where(
                vv.c.bed_id.in_(ids), vv.c.service_day >= first, vv.c.service_day < nxt
            )
        )
        for r in rows:
            minutes[r.bed_id][r.service_day] += r.minutes or 0
            kinds[r.bed_id] |= cat.kinds_in(
                r.item_codes or [], policy.compliance.daily_living_category
            )
            counts[r.bed_id] += 1
    excluded: dict[uuid.UUID, list[Excluded]] = defaultdict(list)
    if ids:
        flagged = await session.execute(
            select(
                Visit.id,
                Visit.bed_id,
                Visit.service_day,
                Visit.minutes,
                func.array_agg(VisitFlag.code).label("codes"),
            )
            .join(VisitFlag, VisitFlag.visit_id == Visit.id)
            .where(
                Visit.bed_id.in_(ids),
                Visit.status == "checked_out",
                Visit.service_day >= first,
                Visit.service_day < nxt,
                VisitFlag.status.in_(("open", "confirmed")),
            )
            .group_by(Visit.id)
        )
        for r in flagged:
            excluded[r.bed_id].append(
                Excluded(
                    visit_id=r.id,
                    service_day=r.service_day,
                    minutes=r.minutes,
                    flags=sorted(r.codes),
                )
            )
    today = clock.today()
    out = []
    for b in beds:
        days = rules.period(month, b.started_on, b.terminated_on or b.suspended_on, today)
        result = rules.evaluate(
            policy.compliance,
            month=month,
            days=days,
            minutes_by_day=dict(minutes[b.id]),
            daily_living_done=kinds[b.id],
        )
        out.append(
            BedCompliance(
                bed_id=b.id,
                elder_id=b.elder_id,
                org_id=b.org_id,
                month=f"{month:%Y-%m}",
                period_start=days[0] if days else None,
                period_end=days[1] if days else None,
                days_in_period=result.days_in_period,
                hours_delivered=result.hours_delivered,
                required_hours=result.required_hours,
                days_with_minimum=result.days_with_minimum,
                days_short=result.days_short,
                monthly_hours_met=result.monthly_hours_met,
                daily_minimum_met=result.daily_minimum_met,
                daily_living_kinds=result.daily_living_kinds,
                daily_living_kinds_met=result.daily_living_kinds_met,
                compliant=result.compliant,
                reasons=result.reasons,
                verified_visits=counts[b.id],
                excluded=excluded[b.id],
            )
        )
    return out


async def bed(
    *, session: AsyncSession, principal: Principal, bed_id: uuid.UUID, month: date
) -> BedCompliance:
    await directory.bed(session=session, principal=principal, bed_id=bed_id)
    row = (await session.execute(select(rm.beds).where(rm.beds.c.id == bed_id))).first()
    return (await _for_beds(session, [row], month))[0]


async def org(
    *, session: AsyncSession, principal: Principal, org_id: uuid.UUID, month: date
) -> OrgCompliance:
    o = rm.orgs
    if (
        await session.scalar(select(o.c.id).where(o.c.id == org_id, scoping.org_scope(principal)))
        is None
    ):
        raise NotFound(T(f"未找到机构 {org_id}", f"org {org_id} not found"))
    first, nxt = month_bounds(month)
    b = rm.beds
    beds = (
        await session.execute(
            select(b).where(
                b.c.org_id == org_id,
                b.c.started_on.is_not(None),
                b.c.started_on < nxt,
                (b.c.terminated_on.is_(None)) | (b.c.terminated_on >= first),
            )
        )
    ).all()
    results = await _for_beds(session, list(beds), month)
    return OrgCompliance(
        org_id=org_id,
        month=f"{month:%Y-%m}",
        beds=len(results),
        compliant=sum(r.compliant for r in results),
        short=[r for r in results if not r.compliant and r.days_in_period > 0],
    )
