"""What dispatch reads of the registry, through the published read model only
(``shared.readmodel``): a bed with its elder, org and station; staff members."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import readmodel as rm
from shared import scoping
from shared.auth import Principal
from shared.errors import NotFound, Unprocessable
from shared.i18n import T


@dataclass(frozen=True)
class BedContext:
    bed_id: uuid.UUID
    status: str
    elder_id: uuid.UUID
    org_id: uuid.UUID
    station_id: uuid.UUID | None
    elder_lat: float | None
    elder_lon: float | None
    zone: str
    region: str
    medical_license: str | None
    medical_license_valid_until: date | None


_BED = (
    select(
        rm.beds.c.id.label("bed_id"),
        rm.beds.c.status,
        rm.beds.c.elder_id,
        rm.beds.c.org_id,
        rm.beds.c.station_id,
        rm.elders.c.lat.label("elder_lat"),
        rm.elders.c.lon.label("elder_lon"),
        rm.elders.c.zone,
        rm.elders.c.residence_region.label("region"),
        rm.orgs.c.medical_license,
        rm.orgs.c.medical_license_valid_until,
    )
    .join(rm.elders, rm.elders.c.id == rm.beds.c.elder_id)
    .join(rm.orgs, rm.orgs.c.id == rm.beds.c.org_id)
)


def _context(row: Any) -> BedContext:
    return BedContext(**row._mapping)


async def bed(
    *, session: AsyncSession, principal: Principal, bed_id: uuid.UUID, field: str | None = None
) -> BedContext:
    """The bed if ``principal`` may see it: 404 (or 422 naming ``field`` in a request body)."""
    row = (
        await session.execute(_BED.where(rm.beds.c.id == bed_id, scoping.bed_scope(principal)))
    ).first()
    if row is None:
        if field:
            raise Unprocessable(
                T(f"未找到床位 {bed_id}", f"bed {bed_id} not found"),
                errors=[(field, T("不在你的范围内或不存在", "no such bed in your scope"))],
            )
        raise NotFound(T(f"未找到床位 {bed_id}", f"bed {bed_id} not found"))
    return _context(row)


async def open_bed_of_elder(*, session: AsyncSession, elder_id: uuid.UUID) -> BedContext | None:
    """The elder's open bed (active first), or None."""
    row = (
        await session.execute(
            _BED.where(
                rm.beds.c.elder_id == elder_id, rm.beds.c.status.in_(scoping.OPEN_BED_STATUSES)
            )
            .order_by((rm.beds.c.status == "active").desc())
            .limit(1)
        )
    ).first()
    return _context(row) if row else None


async def elder(*, session: AsyncSession, elder_id: uuid.UUID) -> Any:
    return (await session.execute(select(rm.elders).where(rm.elders.c.id == elder_id))).first()


async def staff_member(
    *,
    session: AsyncSession,
    staff_id: uuid.UUID,
    org_id: uuid.UUID | None = None,
    field: str = "staff_id",
) -> Any:
    s = rm.staff
    stmt = select(s).where(s.c.id == staff_id)
    row = (await session.execute(stmt)).first()
    if row is None or (org_id is not None and row.org_id != org_id) or not row.active:
        raise Unprocessable(
            T(
                f"服务人员 {staff_id} 不属于该机构或已停用",
                f"staff {staff_id} is not active staff of this org",
            ),
            errors=[(field, T("不是该机构的在职人员", "not active staff of the bed's org"))],
        )
    return row


async def require_staff(*, session: AsyncSession, principal: Principal, staff_id: uuid.UUID) -> Any:
    """The staff row if ``principal`` may see it (``shared.scoping.staff_scope``); 404."""
    s = rm.staff
    row = (
        await session.execute(select(s).where(s.c.id == staff_id, scoping.staff_scope(principal)))
    ).first()
    if row is None:
        raise NotFound(T(f"未找到服务人员 {staff_id}", f"staff {staff_id} not found"))
    return row


async def station(*, session: AsyncSession, station_id: uuid.UUID) -> Any:
    return (
        await session.execute(select(rm.stations).where(rm.stations.c.id == station_id))
    ).first()


async def on_duty_staff(
    *, session: AsyncSession, org_id: uuid.UUID, station_id: uuid.UUID | None = None
) -> list[Any]:
    """Active, on-duty staff of an org (or one station) with their station's position."""
    s, st = rm.staff, rm.stations
    stmt = (
        select(s.c.id, s.c.role, s.c.station_id, st.c.lat, st.c.lon)
        .join(st, st.c.id == s.c.station_id)
        .where(
            s.c.org_id == org_id,
            s.c.active.is_(True),
            s.c.on_duty.is_(True),
            st.c.lat.is_not(None),
            st.c.lon.is_not(None),
        )
        .order_by(s.c.id)
    )
    if station_id:
        stmt = stmt.where(s.c.station_id == station_id)
    return list((await session.execute(stmt)).all())


async def homes(*, session: AsyncSession, elder_ids: set[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Where elders live (lat, lon, zone), by elder id."""
    if not elder_ids:
        return {}
    e = rm.elders
    rows = await session.execute(
        select(e.c.id, e.c.lat, e.c.lon, e.c.zone).where(e.c.id.in_(elder_ids))
    )
    return {r.id: r for r in rows}


async def addresses(*, session: AsyncSession, elder_ids: set[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Where elders live as a community officer needs it (region, address), by elder id."""
    if not elder_ids:
        return {}
    e = rm.elders
    rows = await session.execute(
        select(e.c.id, e.c.residence_region, e.c.address).where(e.c.id.in_(elder_ids))
    )
    return {r.id: r for r in rows}
