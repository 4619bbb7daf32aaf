"""Gateways as telemetry sees them: online/offline from the status topic and last will."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import select

from services.telemetry.gateways.models import Gateway
from services.telemetry.gateways.schemas import GatewayRead
from shared import scoping
from shared.auth import Principal, ScopedReader
from shared.errors import NotFound
from shared.i18n import T
from shared.ids import DEVICE_ID_PATTERN
from shared.uow import SessionDep

router = APIRouter(tags=["gateways"])

Reader = ScopedReader


@router.get(
    "/v1/gateways/{gateway_id}",
    response_model=GatewayRead,
    summary="Online/offline as last reported by status topic or last will",
)
async def gateway_status(
    gateway_id: Annotated[str, Path(pattern=DEVICE_ID_PATTERN)],
    session: SessionDep,
    principal: Principal = Reader,
) -> GatewayRead:
    await scoping.require_device(session, principal, gateway_id)
    row = await session.scalar(select(Gateway).where(Gateway.gateway_id == gateway_id))
    if row is None:
        raise NotFound(
            T(f"网关 {gateway_id} 尚未上报状态", f"gateway {gateway_id} has not reported yet")
        )
    return GatewayRead.model_validate(row)
