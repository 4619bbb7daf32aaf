"""Readings and raw events: an elder's vital signs (JSON or FHIR R4), a device's events,
gateway status, and the dead-letter queue for ops."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from services.registry.devices import service as devices
from services.registry.devices.schemas import DEVICE_ID_PATTERN
from services.registry.elders import service as elders
from services.telemetry import fhir
from services.telemetry.events import service
from services.telemetry.events.models import Gateway
from services.telemetry.events.schemas import DeadLetterRead, EventRead, GatewayRead
from shared.auth import Principal, Role, ScopedReader, platform_wide, require_roles
from shared.errors import NotFound
from shared.pagination import Limit
from shared.uow import SessionDep

router = APIRouter(tags=["readings"])

Reader = ScopedReader
Ops = require_roles(Role.admin)


@router.get(
    "/v1/elders/{elder_id}/vitals",
    summary="Vital signs, newest first; `format=fhir` answers an R4 Bundle of "
    "Observations (LOINC, UCUM)",
)
async def elder_vitals(
    elder_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Reader,
    since: datetime | None = Query(None, description="default: 24 hours ago"),
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
    format: Literal["json", "fhir"] = "json",
) -> Any:
    await elders.get(session=session, principal=principal, elder_id=elder_id)
    until = until or datetime.now().astimezone()
    since = since or until - timedelta(hours=24)
    rows = await service.vitals(
        session=session, elder_id=elder_id, since=since, until=until, limit=limit
    )
    if format == "fhir":
        observations = [
            obs
            for r in rows
            for obs in fhir.observations(
                elder_id, r.device_id, r.device_ts, r.data, event_id=f"{r.device_id}-{r.msg_id}"
            )
        ]
        return fhir.bundle(observations)
    return {
        "elder_id": str(elder_id),
        "since": since,
        "until": until,
        "items": [
            {"ts": r.device_ts, "received_at": r.received_at, "device_id": r.device_id, **r.data}
            for r in rows
        ],
    }


@router.get(
    "/v1/devices/{device_id}/events",
    response_model=list[EventRead],
    summary="A device's events, newest first (device time and arrival time)",
)
async def device_events(
    device_id: Annotated[str, Path(pattern=DEVICE_ID_PATTERN)],
    session: SessionDep,
    principal: Principal = Reader,
    event: Annotated[str | None, Query(max_length=16)] = None,
    since: datetime | None = None,
    limit: Limit = 100,
) -> list[EventRead]:
    if principal.role is Role.family:
        raise NotFound(f"device {device_id} not found")
    await devices.get(session=session, principal=principal, device_id=device_id)
    rows = await service.device_events(
        session=session, device_id=device_id, event=event, since=since, limit=limit
    )
    return [EventRead.model_validate(r) for r in rows]


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
    if principal.role is Role.family:
        raise NotFound(f"gateway {gateway_id} not found")
    await devices.get(session=session, principal=principal, device_id=gateway_id)
    row = await session.scalar(select(Gateway).where(Gateway.gateway_id == gateway_id))
    if row is None:
        raise NotFound(f"gateway {gateway_id} has not reported yet")
    return GatewayRead.model_validate(row)


@router.get(
    "/v1/dead-letters",
    response_model=list[DeadLetterRead],
    summary="Messages the ingest refused, with the reason (ops)",
)
async def dead_letters(
    session: SessionDep,
    principal: Principal = Ops,
    reason: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 100,
) -> list[DeadLetterRead]:
    platform_wide(principal)  # dead letters hold raw payloads from every region
    rows = await service.dead_letters(session=session, reason=reason, limit=limit)
    return [DeadLetterRead.of(r) for r in rows]
