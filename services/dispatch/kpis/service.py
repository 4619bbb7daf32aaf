"""The telecare standard's KPIs per org and month (Asia/Shanghai): answered (a caregiver
accepted) within 60 s and 180 s of the alert, on site (checked in) within 45 min. False
alarms (cancelled) are not counted."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import policy as dispatch_policy
from services.dispatch.chains.service import require_org
from services.dispatch.compliance.service import month_bounds
from services.dispatch.dispatches.models import Dispatch
from services.dispatch.kpis.schemas import Kpi, OrgKpis
from shared import clock
from shared.auth import Principal


def share(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


async def org(
    *, session: AsyncSession, principal: Principal, org_id: uuid.UUID, month: date
) -> OrgKpis:
    await require_org(session, principal, org_id)
    first, nxt = month_bounds(month)
    lo = datetime.combine(first, time.min, tzinfo=clock.SHANGHAI)
    hi = datetime.combine(nxt, time.min, tzinfo=clock.SHANGHAI)
    kpis = dispatch_policy.load().kpis
    answered = func.extract("epoch", Dispatch.accepted_at - Dispatch.raised_at)
    on_site = func.extract("epoch", Dispatch.arrived_at - Dispatch.raised_at)
    fast, slow, site = kpis["answered_fast"], kpis["answered_slow"], kpis["on_site"]
    row = (
        await session.execute(
            select(
                func.count().filter(Dispatch.status != "cancelled"),
                func.count().filter(Dispatch.status == "cancelled"),
                func.count().filter(Dispatch.status != "cancelled", answered <= fast.seconds),
                func.count().filter(Dispatch.status != "cancelled", answered <= slow.seconds),
                func.count().filter(Dispatch.status != "cancelled", on_site <= site.seconds),
            ).where(Dispatch.org_id == org_id, Dispatch.raised_at >= lo, Dispatch.raised_at < hi)
        )
    ).one()
    total, cancelled, n_fast, n_slow, n_site = row
    out = []
    for name, k, n in (
        ("answered", fast, n_fast),
        ("answered", slow, n_slow),
        ("on_site", site, n_site),
    ):
        s = share(n, total)
        out.append(
            Kpi(
                name=name,
                within_seconds=k.seconds,
                count=n,
                share=s,
                target=k.target,
                met=None if s is None else s >= k.target,
            )
        )
    return OrgKpis(
        org_id=org_id, month=f"{month:%Y-%m}", dispatches=total, cancelled=cancelled, kpis=out
    )
