"""Readings and raw events: an elder's vital signs (JSON or FHIR R4) and a device's events."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from services.telemetry.events import fhir, service
from services.telemetry.events.schemas import EventRead
from shared import scoping
from shared.auth import Principal, Role, ScopedReader
from shared.errors import NotFound
from shared.i18n import T
from shared.ids import DEVICE_ID_PATTERN
from shared.pagination import Limit
from shared.uow import SessionDep

router = APIRouter(tags=["readings"])

Reader = ScopedReader


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
    await scoping.require_elder(session, principal, elder_id)
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
        raise NotFound(T(f"未找到设备 {device_id}", f"device {device_id} not found"))
    await scoping.require_device(session, principal, device_id)
    rows = await service.device_events(
        session=session, device_id=device_id, event=event, since=since, limit=limit
    )
    return [EventRead.model_validate(r) for r in rows]
