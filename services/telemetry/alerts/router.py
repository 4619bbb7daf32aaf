from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from services.telemetry.alerts import service, stream
from services.telemetry.alerts.schemas import (
    AckIn,
    AlertKind,
    AlertLogRead,
    AlertRead,
    AlertStatus,
    ResolveIn,
    Severity,
)
from shared.auth import Principal, ScopedReader, StaffReader
from shared.dates import IsoDateTime
from shared.errors import Unprocessable
from shared.i18n import T
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
    kind: AlertKind | None = None,
    elder_id: uuid.UUID | None = None,
    since: Annotated[
        IsoDateTime | None, Query(description="raised at or after; RFC 3339 with an offset")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AlertRead]:
    filters = service.AlertFilters(
        status=status, active=active, severity=severity, kind=kind, elder_id=elder_id, since=since
    )
    return await service.list_page(
        session=session, principal=principal, filters=filters, cursor=cursor, limit=limit
    )


_POSITION = (
    "a position from the stream (the `id:` of the last event received, a number); "
    "`<xid>-<seq>` tokens from earlier versions are still understood"
)


def _position(value: str, field: str) -> stream.Token:
    position = stream.Token.parse(value)
    if position is None:
        raise Unprocessable(
            T(f"{field} 不是告警流中的位置", f"{field} is not a position in the alert stream"),
            errors=[(field, T("应为事件流中某个事件的 id", "expected the id of a stream event"))],
        )
    return position


@router.get(
    "/stream",
    summary="Live alert steps (SSE); resume with Last-Event-ID",
    description=(
        "Each event's `id` is its position (a number, in commit order); send the last one back as "
        "`Last-Event-ID` (or `?after=`) to resume: nothing is skipped, even steps that "
        "committed out of order. Without a position the stream starts now. Steps of alerts "
        "closed longer ago than the alert-log retention may have been pruned."
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_alerts(
    request: Request,
    principal: Principal = Reader,
    last_event_id: Annotated[str | None, Header(max_length=41, description=_POSITION)] = None,
    after: Annotated[str | None, Query(max_length=41, description="same as Last-Event-ID")] = None,
) -> StreamingResponse:
    pool = request.app.state.read_pool
    if last_event_id:
        start = await stream.resume_position(pool, _position(last_event_id, "Last-Event-ID"))
    elif after:
        start = await stream.resume_position(pool, _position(after, "after"))
    else:
        # A new subscriber gets what happens from now on; history is GET /v1/alerts.
        start = await stream.now_position(pool)
    body = stream.events(
        sessionmaker=request.app.state.sessionmaker,
        broadcaster=request.app.state.broadcaster,
        principal=principal,
        after=start,
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
    response_model=Page[AlertLogRead],
    summary="Every step of the alert: who did what, when (oldest first)",
)
async def alert_history(
    alert_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AlertLogRead]:
    alert = await service.get(session=session, principal=principal, alert_id=alert_id)
    return await service.history(session=session, alert=alert, cursor=cursor, limit=limit)


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
