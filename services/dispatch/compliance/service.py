"""Compliance of beds with the service rule, from the verified visits (the same rows subsidy
redeems against: ``dispatch.verified_visits``); excluded visits are listed with their flags."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import directory
from services.dispatch import policy as dispatch_policy
from services.dispatch.catalogue import service as catalogue
from services.dispatch.chains.service import require_org
from services.dispatch.compliance import rules
from services.dispatch.compliance.schemas import BedCompliance, Excluded, OrgCompliance, Reason
from services.dispatch.visits import service as visits
from shared import clock
from shared import readmodel as rm
from shared.auth import Principal
from shared.errors import Unprocessable
from shared.i18n import T
from shared.pagination import decode_cursor, encode_cursor
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
    for r in await visits.excluded(session=session, bed_ids=ids, first=first, until=nxt):
        excluded[r.bed_id].append(
            Excluded(visit_id=r.id, service_day=r.service_day, minutes=r.minutes, flags=r.codes)
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
                reasons=[Reason(code=x.code, message=str(x.message)) for x in result.reasons],
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
    *,
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID,
    month: date,
    cursor: str | None,
    limit: int,
) -> OrgCompliance:
    """Every bed of the org in service during the month, evaluated; one page of those short
    of the rule (bed-id order)."""
    await require_org(session, principal, org_id)
    first, nxt = month_bounds(month)
    b = rm.beds
    beds = (
        await session.execute(
            select(b)
            .where(
                b.c.org_id == org_id,
                b.c.started_on.is_not(None),
                b.c.started_on < nxt,
                (b.c.terminated_on.is_(None)) | (b.c.terminated_on >= first),
            )
            .order_by(b.c.id)
        )
    ).all()
    results = await _for_beds(session, list(beds), month)
    short = [r for r in results if not r.compliant and r.days_in_period > 0]
    after = decode_cursor(cursor)
    if after is not None:
        if not isinstance(after, uuid.UUID):
            raise Unprocessable(  # pages are keyed by bed id
                T("分页游标无效", "cursor is not valid"),
                errors=[("cursor", T("不是有效的分页游标", "not a cursor"))],
            )
        short = [r for r in short if r.bed_id > after]
    return OrgCompliance(
        org_id=org_id,
        month=f"{month:%Y-%m}",
        beds=len(results),
        compliant=sum(r.compliant for r in results),
        items=short[:limit],
        next_cursor=encode_cursor(short[limit - 1].bed_id) if len(short) > limit else None,
    )
