from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.registry.devices import service
from services.registry.devices.schemas import (
    DeviceCreate,
    DeviceRead,
    DeviceRetire,
    DeviceRetired,
    DeviceStatus,
)
from shared.auth import Principal, Role, StaffReader, require_roles
from shared.errors import problem_doc
from shared.ids import DEVICE_ID_PATTERN
from shared.pagination import Cursor, Limit, Page, next_cursor
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/devices", tags=["devices"])

Writer = require_roles(Role.admin, Role.org_admin)
Reader = StaffReader


@router.post(
    "",
    status_code=201,
    response_model=DeviceRead,
    summary="Register a gateway or device; a gateway's MQTT password is shown only here",
)
async def register_device(
    device_in: DeviceCreate, session: SessionDep, principal: Principal = Writer
) -> DeviceRead:
    return await service.register(session=session, principal=principal, device_in=device_in)


@router.get("", response_model=Page[DeviceRead], summary="Devices in your scope")
async def list_devices(
    session: SessionDep,
    principal: Principal = Reader,
    elder_id: uuid.UUID | None = None,
    gateway_id: Annotated[str | None, Query(pattern=DEVICE_ID_PATTERN)] = None,
    status: DeviceStatus | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[DeviceRead]:
    rows = await service.list_page(
        session=session,
        principal=principal,
        elder_id=elder_id,
        gateway_id=gateway_id,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    return Page[DeviceRead](
        items=[DeviceRead.model_validate(d) for d in rows[:limit]],
        next_cursor=next_cursor(rows, limit),
    )


@router.get("/{device_id}", response_model=DeviceRead)
async def get_device(
    device_id: Annotated[str, Path(pattern=DEVICE_ID_PATTERN)],
    session: SessionDep,
    principal: Principal = Reader,
) -> DeviceRead:
    return DeviceRead.model_validate(
        await service.get(session=session, principal=principal, device_id=device_id)
    )


@router.post(
    "/{device_id}/retire",
    response_model=DeviceRetired,
    summary="Retire a device; a gateway retires with the devices behind it",
    description=(
        "The device stops counting: no alert is raised for it any more (offline, low "
        "battery, inactivity, bed exit), its open device alerts are closed by the monitor "
        "within one scan, a gateway's MQTT login is left out of the broker's password "
        "file from its next generation (`eldercare broker-config`, then SIGHUP), and its "
        "messages are refused as from an unknown device. Its row, events and alert "
        "history stay, and its id stays taken: it can never be registered again. "
        "Retiring a gateway retires every active device behind it (listed in "
        "`also_retired`). Each retirement is audited with who, when and the reason. "
        "409 when already retired."
    ),
    responses={404: problem_doc("not in your scope"), 409: problem_doc("already retired")},
)
async def retire_device(
    device_id: Annotated[str, Path(pattern=DEVICE_ID_PATTERN)],
    session: SessionDep,
    body: DeviceRetire | None = None,
    principal: Principal = Writer,
) -> DeviceRetired:
    return await service.retire(
        session=session,
        principal=principal,
        device_id=device_id,
        reason=(body or DeviceRetire()).reason,
    )
