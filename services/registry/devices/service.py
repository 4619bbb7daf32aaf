"""Devices registered against an elder (and bed); gateways get MQTT credentials."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.beds.models import Bed
from services.registry.devices.models import Device
from services.registry.devices.schemas import DeviceCreate, DeviceRead, MqttCredentials
from services.registry.elders import service as elders
from shared import mqtt_credentials as credentials
from shared import scoping
from shared.auth import Principal
from shared.errors import Conflict, NotFound, Unprocessable
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
        raise NotFound(f"device {device_id} not found")
    return device


async def register(
    *, session: AsyncSession, principal: Principal, device_in: DeviceCreate
) -> DeviceRead:
    try:
        elder = await elders.get(session=session, principal=principal, elder_id=device_in.elder_id)
    except NotFound:
        raise Unprocessable(
            f"elder {device_in.elder_id} not found",
            errors=[("elder_id", "no such elder in your scope")],
        ) from None
    if device_in.bed_id is not None:
        bed = await session.get(Bed, device_in.bed_id)
        if bed is None or bed.elder_id != elder.id:
            raise Unprocessable(
                "the bed is not this elder's", errors=[("bed_id", "not a bed of this elder")]
            )
    if await session.scalar(select(Device.id).where(Device.device_id == device_in.device_id)):
        raise Conflict(f"device {device_in.device_id} is already registered")
    password = None
    if device_in.kind != "gateway":
        gateway = await session.scalar(
            select(Device).where(Device.device_id == device_in.gateway_id, Device.kind == "gateway")
        )
        if gateway is None or gateway.elder_id != elder.id:
            raise Unprocessable(
                f"gateway {device_in.gateway_id} is not registered for this elder",
                errors=[("gateway_id", "no such gateway for this elder")],
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


async def list_page(
    *,
    session: AsyncSession,
    principal: Principal,
    elder_id,
    gateway_id,
    cursor: str | None,
    limit: int,
) -> list[Device]:
    stmt = readable_statement(principal)
    if elder_id:
        stmt = stmt.where(Device.elder_id == elder_id)
    if gateway_id:
        stmt = stmt.where(Device.gateway_id == gateway_id)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(Device.id > after)
    return list(await session.scalars(stmt.order_by(Device.id).limit(limit + 1)))
