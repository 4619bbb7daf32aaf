"""The telecare standard's KPIs per org and month (Asia/Shanghai): answered (a caregiver
accepted) within 60 s and 180 s of the alert, on site (checked in) within 45 min. False
alarms (cancelled) are not counted."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import policy as dispatch_policy
from services.dispatch.chains.service import require_org
from services.dispatch.compliance.service import month_bounds
from services.dispatch.dispatches import service as dispatches
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
    fast, slow, site = kpis["answered_fast"], kpis["answered_slow"], kpis["on_site"]
    total, cancelled, n_fast, n_slow, n_site = await dispatches.timeliness(
        session=session,
        org_id=org_id,
        lo=lo,
        hi=hi,
        answered_within=(fast.seconds, slow.seconds),
        on_site_within=site.seconds,
    )
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
