from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from services.dispatch.dispatches import service
from services.dispatch.dispatches.models import Dispatch
from services.dispatch.dispatches.schemas import (
    DispatchCancel,
    DispatchCreate,
    DispatchRead,
    DispatchStatus,
    ResolveIn,
)
from shared.auth import Principal, Role, StaffReader, require_roles
from shared.errors import NotFound
from shared.i18n import T
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/dispatches", tags=["emergency dispatch"])

Service = require_roles(Role.service)
Caregiver = require_roles(Role.caregiver)
Resolver = require_roles(Role.caregiver, Role.org_admin, Role.admin, Role.community, Role.street)


@router.post(
    "",
    status_code=201,
    response_model=DispatchRead,
    summary="Telemetry's hand-off of an emergency or fall (idempotent on alert_id)",
    responses={200: {"model": DispatchRead, "description": "this alert's dispatch already exists"}},
)
async def create_dispatch(
    body: DispatchCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Principal = Service,
) -> DispatchRead:
    made, created = await service.create(
        session=session, body=body, travel=request.app.state.travel
    )
    if created:
        return made  # written and read in one statement (the hand-off is a latency target)
    response.status_code = 200
    return await service.to_read(session, made)


@router.post(
    "/cancel",
    response_model=DispatchRead,
    summary="Telemetry closed the alert as a false alarm: stop the dispatch (idempotent)",
)
async def cancel_dispatch(
    body: DispatchCancel, session: SessionDep, principal: Principal = Service
) -> DispatchRead:
    d = await service.cancel(session=session, body=body)
    if d is None:
        raise NotFound(
            T(f"告警 {body.alert_id} 没有派单", f"no dispatch for alert {body.alert_id}")
        )
    return await service.to_read(session, d)


@router.get("", response_model=Page[DispatchRead], summary="Dispatches with every step timestamped")
async def list_dispatches(
    session: SessionDep,
    principal: Principal = StaffReader,
    alert_id: uuid.UUID | None = None,
    elder_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = None,
    status: DispatchStatus | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[DispatchRead]:
    stmt = service.readable_statement(principal)
    if alert_id:
        stmt = stmt.where(Dispatch.alert_id == alert_id)
    if elder_id:
        stmt = stmt.where(Dispatch.elder_id == elder_id)
    if org_id:
        stmt = stmt.where(Dispatch.org_id == org_id)
    if status:
        stmt = stmt.where(Dispatch.status == status)
    page = await paginate(
        session, stmt, key=Dispatch.id, cursor=cursor, limit=limit, descending=True
    )
    return Page[DispatchRead](
        items=await service.to_reads(session, page.items), next_cursor=page.next_cursor
    )


@router.get("/{dispatch_id:uuid}", response_model=DispatchRead)
async def get_dispatch(
    dispatch_id: uuid.UUID, session: SessionDep, principal: Principal = StaffReader
) -> DispatchRead:
    return await service.to_read(
        session, await service.get(session=session, principal=principal, dispatch_id=dispatch_id)
    )


@router.post(
    "/{dispatch_id}/accept", response_model=DispatchRead, summary="The offered caregiver takes it"
)
async def accept(
    dispatch_id: uuid.UUID, session: SessionDep, principal: Principal = Caregiver
) -> DispatchRead:
    return await service.to_read(
        session, await service.accept(session=session, principal=principal, dispatch_id=dispatch_id)
    )


@router.post(
    "/{dispatch_id}/decline",
    response_model=DispatchRead,
    summary="The offered caregiver cannot: next step at once",
)
async def decline(
    dispatch_id: uuid.UUID, session: SessionDep, principal: Principal = Caregiver
) -> DispatchRead:
    return await service.to_read(
        session,
        await service.decline(session=session, principal=principal, dispatch_id=dispatch_id),
    )


@router.post(
    "/{dispatch_id}/resolve",
    response_model=DispatchRead,
    summary="Done: resolves the alert in telemetry",
)
async def resolve(
    dispatch_id: uuid.UUID,
    session: SessionDep,
    body: ResolveIn | None = None,
    principal: Principal = Resolver,
) -> DispatchRead:
    d = await service.resolve_by(
        session=session,
        principal=principal,
        dispatch_id=dispatch_id,
        note=(body or ResolveIn()).note,
    )
    return await service.to_read(session, d)
