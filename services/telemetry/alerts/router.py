from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from services.telemetry.alerts import service, stream
from services.telemetry.alerts.schemas import (
    AckIn,
    AlertLogRead,
    AlertRead,
    AlertStatus,
    ResolveIn,
    Severity,
)
from shared.auth import Principal, ScopedReader, StaffReader
from shared.errors import Unprocessable
from shared.pagination import Cursor, Limit, Page
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

Reader = ScopedReader
Handler = StaffReader


@router.get("", response_model=Page[AlertRead], summary="Alerts in your scope, newest first")
async def list_alerts(
    session: SessionDep,
    principal: Principal = Reader,
    status: AlertStatus | None = None,
    active: bool | None = Query(None, description="open, acknowledged or dispatched"),
    severity: Severity | None = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    elder_id: uuid.UUID | None = None,
    since: datetime | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AlertRead]:
    filters = service.AlertFilters(
        status=status, active=active, severity=severity, kind=kind, elder_id=elder_id, since=since
    )
    return await service.list_page(
        session=session, principal=principal, filters=filters, cursor=cursor, limit=limit
    )


@router.get(
    "/stream",
    summary="Live alert steps (SSE); resume with Last-Event-ID",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_alerts(
    request: Request,
    principal: Principal = Reader,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(ge=0, description="same as Last-Event-ID")] = None,
) -> StreamingResponse:
    # A new subscriber gets what happens from now on; history is GET /v1/alerts.
    start = after if after is not None else await stream.current_seq(request.app.state.read_pool)
    if last_event_id:
        if not last_event_id.isdigit():
            raise Unprocessable(
                "Last-Event-ID must be a number", errors=[("Last-Event-ID", "not a number")]
            )
        start = int(last_event_id)
    body = stream.events(
        sessionmaker=request.app.state.sessionmaker,
        broadcaster=request.app.state.broadcaster,
        principal=principal,
        last_id=start,
        expires_at=float(principal.claims.get("exp", 0)) or None,
    )
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/{alert_id}", response_model=AlertRead)
async def get_alert(
    alert_id: uuid.UUID, session: SessionDep, principal: Principal = Reader
) -> AlertRead:
    return AlertRead.model_validate(
        await service.get(session=session, principal=principal, alert_id=alert_id)
    )


@router.get(
    "/{alert_id}/history",
    response_model=list[AlertLogRead],
    summary="Every step of the alert: who did what, when",
)
async def alert_history(
    alert_id: uuid.UUID, session: SessionDep, principal: Principal = Reader
) -> list[AlertLogRead]:
    alert = await service.get(session=session, principal=principal, alert_id=alert_id)
    return [
        AlertLogRead.model_validate(e) for e in await service.history(session=session, alert=alert)
    ]


@router.post("/{alert_id}/ack", response_model=AlertRead, summary="Acknowledge: somebody has it")
async def ack_alert(
    alert_id: uuid.UUID,
    session: SessionDep,
    body: AckIn | None = None,
    principal: Principal = Handler,
) -> AlertRead:
    alert = await service.get(session=session, principal=principal, alert_id=alert_id)
    alert = await service.acknowledge(
        session=session, principal=principal, alert=alert, note=(body or AckIn()).note
    )
    return AlertRead.model_validate(alert)


@router.post(
    "/{alert_id}/resolve",
    response_model=AlertRead,
    summary="Close the alert as resolved or as a false alarm",
)
async def resolve_alert(
    alert_id: uuid.UUID,
    session: SessionDep,
    body: ResolveIn | None = None,
    principal: Principal = Handler,
) -> AlertRead:
    alert = await service.get(session=session, principal=principal, alert_id=alert_id)
    body = body or ResolveIn()
    alert = await service.resolve(
        session=session, principal=principal, alert=alert, outcome=body.outcome, note=body.note
    )
    return AlertRead.model_validate(alert)
