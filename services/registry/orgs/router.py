from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.registry.deps import CipherDep
from services.registry.orgs import service
from services.registry.orgs.schemas import (
    OrgCreate,
    OrgRead,
    StaffCreate,
    StaffRead,
    StaffRole,
    StaffUpdate,
    StationCreate,
    StationRead,
)
from shared import clock
from shared.auth import Principal, Role, StaffReader, require_roles
from shared.errors import Forbidden
from shared.i18n import T
from shared.pagination import Cursor, Limit, Page
from shared.uow import SessionDep

router = APIRouter(tags=["orgs"])

Admin = require_roles(Role.admin)
Manager = require_roles(Role.admin, Role.org_admin)
Reader = StaffReader
StaffEditor = require_roles(Role.admin, Role.org_admin, Role.caregiver)


@router.post(
    "/v1/orgs",
    status_code=201,
    response_model=OrgRead,
    summary="Register a service organisation (credit code checked; region from it by default)",
)
async def create_org(
    org_in: OrgCreate, session: SessionDep, principal: Principal = Admin
) -> OrgRead:
    if not principal.in_region(org_in.region):
        raise Forbidden(
            T(
                f"地区 {org_in.region} 不在你的管辖范围 {principal.region} 内",
                f"region {org_in.region} is outside your region {principal.region}",
            )
        )
    return OrgRead.model_validate(await service.create(session=session, org_in=org_in))


@router.get("/v1/orgs", response_model=Page[OrgRead], summary="Organisations in your scope")
async def list_orgs(
    session: SessionDep, principal: Principal = Reader, cursor: Cursor = None, limit: Limit = 50
) -> Page[OrgRead]:
    page = await service.list_page(session=session, principal=principal, cursor=cursor, limit=limit)
    return Page[OrgRead](
        items=[OrgRead.model_validate(o) for o in page.items], next_cursor=page.next_cursor
    )


@router.get("/v1/orgs/{org_id}", response_model=OrgRead)
async def get_org(org_id: uuid.UUID, session: SessionDep, principal: Principal = Reader) -> OrgRead:
    return OrgRead.model_validate(
        await service.get(session=session, principal=principal, org_id=org_id)
    )


@router.post(
    "/v1/orgs/{org_id}/stations",
    status_code=201,
    response_model=StationRead,
    summary="Add a service station (its location anchors the service radius)",
)
async def create_station(
    org_id: uuid.UUID,
    station_in: StationCreate,
    session: SessionDep,
    principal: Principal = Manager,
) -> StationRead:
    org = await service.get(session=session, principal=principal, org_id=org_id)
    station = await service.create_station(session=session, org=org, station_in=station_in)
    return StationRead.model_validate(station)


@router.get(
    "/v1/orgs/{org_id}/stations", response_model=Page[StationRead], summary="The org's stations"
)
async def list_stations(
    org_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[StationRead]:
    org = await service.get(session=session, principal=principal, org_id=org_id)
    page = await service.list_stations(session=session, org=org, cursor=cursor, limit=limit)
    return Page[StationRead](
        items=[StationRead.model_validate(s) for s in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/v1/orgs/{org_id}/staff",
    status_code=201,
    response_model=StaffRead,
    summary="Add a staff member (role, certificates, insurance, station)",
)
async def create_staff(
    org_id: uuid.UUID,
    staff_in: StaffCreate,
    session: SessionDep,
    cipher: CipherDep,
    principal: Principal = Manager,
) -> StaffRead:
    org = await service.get(session=session, principal=principal, org_id=org_id)
    staff = await service.create_staff(session=session, cipher=cipher, org=org, staff_in=staff_in)
    return service.staff_to_read(staff, clock.today())


@router.get("/v1/orgs/{org_id}/staff", response_model=Page[StaffRead], summary="The org's staff")
async def list_staff(
    org_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Reader,
    on_duty: bool | None = None,
    role: StaffRole | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[StaffRead]:
    org = await service.get(session=session, principal=principal, org_id=org_id)
    today = clock.today()
    page = await service.list_staff(
        session=session, org=org, on_duty=on_duty, role=role, cursor=cursor, limit=limit
    )
    return Page[StaffRead](
        items=[service.staff_to_read(s, today) for s in page.items], next_cursor=page.next_cursor
    )


@router.get("/v1/staff/{staff_id}", response_model=StaffRead)
async def get_staff(
    staff_id: uuid.UUID, session: SessionDep, principal: Principal = Reader
) -> StaffRead:
    staff = await service.get_staff(session=session, principal=principal, staff_id=staff_id)
    return service.staff_to_read(staff, clock.today())


@router.patch(
    "/v1/staff/{staff_id}",
    response_model=StaffRead,
    summary="Change duty status, station, insurance, certificates; caregivers may "
    "only switch their own duty status",
)
async def update_staff(
    staff_id: uuid.UUID,
    staff_in: StaffUpdate,
    session: SessionDep,
    principal: Principal = StaffEditor,
) -> StaffRead:
    staff = await service.get_staff(session=session, principal=principal, staff_id=staff_id)
    if principal.role is Role.caregiver and (
        principal.staff != staff.id or staff_in.model_fields_set - {"on_duty"}
    ):
        raise Forbidden(
            T("护理员只能修改自己的在岗状态", "caregivers may only change their own on_duty status")
        )
    staff = await service.update_staff(session=session, staff=staff, staff_in=staff_in)
    return service.staff_to_read(staff, clock.today())
