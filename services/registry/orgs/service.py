"""Organisations, their stations and staff, scoped: an org sees only itself."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.orgs.models import Org, Staff, Station
from services.registry.orgs.schemas import (
    OrgCreate,
    StaffCreate,
    StaffRead,
    StaffUpdate,
    StationCreate,
)
from shared import scoping
from shared.auth import Principal
from shared.errors import Conflict, NotFound, Unprocessable
from shared.i18n import T
from shared.pagination import Page, paginate
from shared.pii import PiiCipher, mask_phone


def scope_clause(principal: Principal) -> ColumnElement[bool]:
    return scoping.org_scope(principal, Org.__table__)


def readable_statement(principal: Principal) -> Select[tuple[Org]]:
    return select(Org).where(scope_clause(principal))


async def get(*, session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> Org:
    org = await session.scalar(readable_statement(principal).where(Org.id == org_id))
    if org is None:
        raise NotFound(T(f"未找到机构 {org_id}", f"org {org_id} not found"))
    return org


async def create(*, session: AsyncSession, org_in: OrgCreate) -> Org:
    if await session.scalar(select(Org.id).where(Org.credit_code == org_in.credit_code)):
        raise Conflict(
            T(
                "该统一社会信用代码的机构已登记",
                "an org with this credit code is already registered",
            )
        )
    org = Org(
        **org_in.model_dump(mode="json")
        | {"medical_license_valid_until": org_in.medical_license_valid_until}
    )
    session.add(org)
    await session.flush()
    return org


async def list_page(
    *, session: AsyncSession, principal: Principal, cursor: str | None, limit: int
) -> Page[Org]:
    stmt = readable_statement(principal)
    return await paginate(session, stmt, key=Org.id, cursor=cursor, limit=limit)


async def create_station(*, session: AsyncSession, org: Org, station_in: StationCreate) -> Station:
    station = Station(org_id=org.id, **station_in.model_dump())
    session.add(station)
    await session.flush()
    return station


async def list_stations(
    *, session: AsyncSession, org: Org, cursor: str | None, limit: int
) -> Page[Station]:
    stmt = select(Station).where(Station.org_id == org.id)
    return await paginate(session, stmt, key=Station.id, cursor=cursor, limit=limit)


async def service_area(*, session: AsyncSession, org_id: uuid.UUID) -> list[str]:
    """The division-code prefixes an org serves: where it is registered, and where each of
    its stations is (a district org may run a station across the border)."""
    org_region = await session.scalar(select(Org.region).where(Org.id == org_id))
    if org_region is None:
        return []
    stations = await session.scalars(
        select(Station.region).where(Station.org_id == org_id, Station.region.is_not(None))
    )
    return list(dict.fromkeys([org_region, *(r for r in stations if r)]))


async def get_station(
    *, session: AsyncSession, org_id: uuid.UUID, station_id: uuid.UUID, field: str = "station_id"
) -> Station:
    station = await session.get(Station, station_id)
    if station is None or station.org_id != org_id:
        raise Unprocessable(
            T(
                f"服务站 {station_id} 不属于机构 {org_id}",
                f"station {station_id} is not a station of org {org_id}",
            ),
            errors=[(field, T("不是本机构的服务站", "not a station of this org"))],
        )
    return station


async def create_staff(
    *, session: AsyncSession, cipher: PiiCipher, org: Org, staff_in: StaffCreate
) -> Staff:
    if staff_in.station_id is not None:
        await get_station(session=session, org_id=org.id, station_id=staff_in.station_id)
    staff = Staff(
        org_id=org.id,
        station_id=staff_in.station_id,
        name=staff_in.name,
        role=staff_in.role,
        phone_enc=cipher.encrypt(staff_in.phone, context=b"staff.phone"),
        phone_masked=mask_phone(staff_in.phone),
        certificates=[c.model_dump(mode="json") for c in staff_in.certificates],
        insured_until=staff_in.insured_until,
        on_duty=staff_in.on_duty,
    )
    session.add(staff)
    await session.flush()
    return staff


def staff_scope_clause(principal: Principal) -> ColumnElement[bool]:
    return Staff.org_id.in_(select(Org.id).where(scope_clause(principal)))


async def get_staff(*, session: AsyncSession, principal: Principal, staff_id: uuid.UUID) -> Staff:
    staff = await session.scalar(
        select(Staff).where(Staff.id == staff_id, staff_scope_clause(principal))
    )
    if staff is None:
        raise NotFound(T(f"未找到工作人员 {staff_id}", f"staff {staff_id} not found"))
    return staff


async def list_staff(
    *,
    session: AsyncSession,
    org: Org,
    on_duty: bool | None,
    role: str | None,
    cursor: str | None,
    limit: int,
) -> Page[Staff]:
    stmt = select(Staff).where(Staff.org_id == org.id)
    if on_duty is not None:
        stmt = stmt.where(Staff.on_duty.is_(on_duty))
    if role:
        stmt = stmt.where(Staff.role == role)
    return await paginate(session, stmt, key=Staff.id, cursor=cursor, limit=limit)


async def update_staff(*, session: AsyncSession, staff: Staff, staff_in: StaffUpdate) -> Staff:
    changes = staff_in.model_dump(exclude_unset=True, mode="json")
    if changes.get("station_id") is not None:
        await get_station(session=session, org_id=staff.org_id, station_id=staff_in.station_id)  # type: ignore[arg-type]
        staff.station_id = staff_in.station_id
    if "on_duty" in changes and changes["on_duty"] is not None:
        staff.on_duty = changes["on_duty"]
    if "insured_until" in changes:
        staff.insured_until = staff_in.insured_until
    if changes.get("certificates") is not None:
        staff.certificates = changes["certificates"]
    if changes.get("active") is not None:
        staff.active = changes["active"]
        staff.on_duty = staff.on_duty and staff.active
    await session.flush()
    return staff


def staff_to_read(staff: Staff, today: date) -> StaffRead:
    read = StaffRead.model_validate(staff)
    read.insured = staff.insured_until is not None and staff.insured_until >= today
    return read
