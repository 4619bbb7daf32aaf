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
from shared.pagination import decode_cursor
from shared.pii import PiiCipher, mask_phone


def scope_clause(principal: Principal) -> ColumnElement[bool]:
    return scoping.org_scope(principal, Org.__table__)


def readable_statement(principal: Principal) -> Select[tuple[Org]]:
    return select(Org).where(scope_clause(principal))


async def get(*, session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> Org:
    org = await session.scalar(readable_statement(principal).where(Org.id == org_id))
    if org is None:
        raise NotFound(f"org {org_id} not found")
    return org


async def create(*, session: AsyncSession, org_in: OrgCreate) -> Org:
    if await session.scalar(select(Org.id).where(Org.credit_code == org_in.credit_code)):
        raise Conflict("an org with this credit code is already registered")
    org = Org(
        **org_in.model_dump(mode="json")
        | {"medical_license_valid_until": org_in.medical_license_valid_until}
    )
    session.add(org)
    await session.flush()
    return org


async def list_page(
    *, session: AsyncSession, principal: Principal, cursor: str | None, limit: int
) -> list[Org]:
    stmt = readable_statement(principal)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(Org.id > after)
    return list(await session.scalars(stmt.order_by(Org.id).limit(limit + 1)))


async def create_station(*, session: AsyncSession, org: Org, station_in: StationCreate) -> Station:
    station = Station(org_id=org.id, **station_in.model_dump())
    session.add(station)
    await session.flush()
    return station


async def list_stations(*, session: AsyncSession, org: Org) -> list[Station]:
    return list(
        await session.scalars(select(Station).where(Station.org_id == org.id).order_by(Station.id))
    )


async def get_station(
    *, session: AsyncSession, org_id: uuid.UUID, station_id: uuid.UUID, field: str = "station_id"
) -> Station:
    station = await session.get(Station, station_id)
    if station is None or station.org_id != org_id:
        raise Unprocessable(
            f"station {station_id} is not a station of org {org_id}",
            errors=[(field, "not a station of this org")],
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
        raise NotFound(f"staff {staff_id} not found")
    return staff


async def list_staff(
    *, session: AsyncSession, org: Org, on_duty: bool | None, role: str | None
) -> list[Staff]:
    stmt = select(Staff).where(Staff.org_id == org.id)
    if on_duty is not None:
        stmt = stmt.where(Staff.on_duty.is_(on_duty))
    if role:
        stmt = stmt.where(Staff.role == role)
    return list(await session.scalars(stmt.order_by(Staff.id)))


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
