"""Devices registered against an elder (and bed); gateways get MQTT credentials.

Retirement keeps the row: the device's id stays taken (nobody can register it again and
inherit its history), its events and alerts stay, and everything that watches devices
(the broker's password file, the ingest directory, the monitor) reads ``status = 'active'``.
A gateway retires with the devices behind it: they cannot report without it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.beds.models import Bed
from services.registry.devices.models import Device
from services.registry.devices.schemas import (
    DeviceCreate,
    DeviceRead,
    DeviceRetired,
    MqttCredentials,
)
from services.registry.elders import service as elders
from shared import audit, scoping
from shared import mqtt_credentials as credentials
from shared.auth import Principal
from shared.errors import Conflict, NotFound, Unprocessable
from shared.i18n import T
from shared.pagination import decode_cursor


def scope_clause(principal: Principal) -> ColumnElement[bool]:
    return scoping.device_scope(principal, Device.__table__)


def readable_statement(principal: Principal) -> Select[tuple[Device]]:
    return select(Device).where(scope_clause(principal))


async def get(*, session: AsyncSession, principal: Principal, device_id: str) -> Device:
    device = await session.scalar(
        readable_statement(principal).where(Device.device_id == device_id)
    )
    if device is None:
        raise NotFound(T(f"未找到设备 {device_id}", f"device {device_id} not found"))
    return device


async def register(
    *, session: AsyncSession, principal: Principal, device_in: DeviceCreate
) -> DeviceRead:
    try:
        elder = await elders.get(session=session, principal=principal, elder_id=device_in.elder_id)
    except NotFound:
        raise Unprocessable(
            T(f"未找到老人 {device_in.elder_id}", f"elder {device_in.elder_id} not found"),
            errors=[("elder_id", T("您的范围内没有该老人", "no such elder in your scope"))],
        ) from None
    if device_in.bed_id is not None:
        bed = await session.get(Bed, device_in.bed_id)
        if bed is None or bed.elder_id != elder.id:
            raise Unprocessable(
                T("该床位不属于这位老人", "the bed is not this elder's"),
                errors=[("bed_id", T("不是这位老人的床位", "not a bed of this elder"))],
            )
    if await session.scalar(select(Device.id).where(Device.device_id == device_in.device_id)):
        # retired ids stay taken: a stranger must not inherit a device's history
        raise Conflict(
            T(
                f"设备 {device_in.device_id} 已登记（或已停用）",
                f"device {device_in.device_id} is already registered (or retired)",
            )
        )
    password = None
    if device_in.kind != "gateway":
        gateway = await session.scalar(
            select(Device).where(
                Device.device_id == device_in.gateway_id,
                Device.kind == "gateway",
                Device.status == "active",
            )
        )
        if gateway is None or gateway.elder_id != elder.id:
            raise Unprocessable(
                T(
                    f"网关 {device_in.gateway_id} 未为这位老人登记（或已停用）",
                    f"gateway {device_in.gateway_id} is not registered for this elder "
                    "(or is retired)",
                ),
                errors=[
                    (
                        "gateway_id",
                        T("这位老人没有该在用网关", "no such active gateway for this elder"),
                    )
                ],
            )
    device = Device(
        device_id=device_in.device_id,
        gateway_id=device_in.gateway_id,
        kind=device_in.kind,
        elder_id=elder.id,
        bed_id=device_in.bed_id,
    )
    if device_in.kind == "gateway":
        password = credentials.new_password()
        device.mqtt_username = device_in.device_id
        device.mqtt_password_hash = credentials.mosquitto_hash(password)
    session.add(device)
    await session.flush()
    read = DeviceRead.model_validate(device)
    if password is not None:
        read.mqtt = MqttCredentials(
            client_id=device.device_id,
            username=device.device_id,
            password=password,
            topic_prefix=credentials.topic_prefix(device.device_id),
            status_topic=credentials.topic_prefix(device.device_id) + "status",
        )
    return read


async def retire(
    *, session: AsyncSession, principal: Principal, device_id: str, reason: str
) -> DeviceRetired:
    """Retire the device (a gateway with the devices behind it), each one audited."""
    device = await get(session=session, principal=principal, device_id=device_id)
    # Locked, and re-read under the lock: two desks retiring at once, one wins.
    await session.refresh(device, with_for_update=True)
    if device.status != "active":
        raise Conflict(
            T(f"设备 {device_id} 已停用", f"device {device_id} is already retired"),
            status_now=device.status,
        )
    retiring = [device]
    if device.kind == "gateway":
        retiring += list(
            await session.scalars(
                select(Device)
                .where(
                    Device.gateway_id == device.device_id,
                    Device.device_id != device.device_id,
                    Device.status == "active",
                )
                .order_by(Device.device_id)
                .with_for_update()
            )
        )
    now = datetime.now(UTC)
    for d in retiring:
        d.status, d.retired_at, d.retired_by = "retired", now, principal.sub
        await audit.record(
            session,
            service="registry",
            principal=principal,
            action="retire" if d is device else "retire_with_gateway",
            resource_type="device",
            resource_id=d.id,
            fields=[d.device_id, f"reason:{reason}"],
        )
    await session.flush()
    return DeviceRetired.model_validate(
        {
            **DeviceRead.model_validate(device).model_dump(),
            "also_retired": [d.device_id for d in retiring[1:]],
        }
    )


async def list_page(
    *,
    session: AsyncSession,
    principal: Principal,
    elder_id,
    gateway_id,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> list[Device]:
    stmt = readable_statement(principal)
    if elder_id:
        stmt = stmt.where(Device.elder_id == elder_id)
    if gateway_id:
        stmt = stmt.where(Device.gateway_id == gateway_id)
    if status:
        stmt = stmt.where(Device.status == status)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(Device.id > after)
    return list(await session.scalars(stmt.order_by(Device.id).limit(limit + 1)))
