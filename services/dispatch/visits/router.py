from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.dispatch.visits import service
from services.dispatch.visits.models import Visit
from services.dispatch.visits.schemas import (
    CheckIn,
    CheckOut,
    CheckResult,
    FlagRead,
    FlagReview,
    VisitCreate,
    VisitRead,
    VisitStatus,
)
from shared.auth import Principal, Role, StaffReader, require_roles
from shared.dates import IsoDateTime
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/visits", tags=["visits"])

Planner = require_roles(Role.admin, Role.org_admin, Role.caregiver)
Handset = require_roles(Role.caregiver, Role.org_admin, Role.admin)
Reviewer = require_roles(Role.admin, Role.street, Role.community, Role.org_admin)


@router.post(
    "",
    status_code=201,
    response_model=VisitRead,
    summary="An ad-hoc visit (items by code or usual name; medical items need qualified staff)",
    responses={
        200: {"model": VisitRead, "description": "the visit this `client_ref` already created"}
    },
)
async def create_visit(
    visit_in: VisitCreate, session: SessionDep, response: Response, principal: Principal = Planner
) -> VisitRead:
    visit, created = await service.create(session=session, principal=principal, visit_in=visit_in)
    if not created:
        response.status_code = 200
    return await service.to_read(session, visit)


@router.get("", response_model=Page[VisitRead], summary="Visits in your scope")
async def list_visits(
    session: SessionDep,
    principal: Principal = StaffReader,
    bed_id: uuid.UUID | None = None,
    staff_id: uuid.UUID | None = None,
    status: VisitStatus | None = None,
    planned_from: Annotated[IsoDateTime | None, Query()] = None,
    planned_to: Annotated[IsoDateTime | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[VisitRead]:
    stmt = service.readable_statement(principal)
    if bed_id:
        stmt = stmt.where(Visit.bed_id == bed_id)
    if staff_id:
        stmt = stmt.where(Visit.staff_id == staff_id)
    if status:
        stmt = stmt.where(Visit.status == status)
    if planned_from:
        stmt = stmt.where(Visit.planned_start >= planned_from)
    if planned_to:
        stmt = stmt.where(Visit.planned_start < planned_to)
    page = await paginate(session, stmt, key=Visit.id, cursor=cursor, limit=limit)
    return Page[VisitRead](
        items=await service.to_reads(session, page.items), next_cursor=page.next_cursor
    )


@router.get("/{visit_id}", response_model=VisitRead)
async def get_visit(
    visit_id: uuid.UUID, session: SessionDep, principal: Principal = StaffReader
) -> VisitRead:
    return await service.to_read(
        session, await service.get(session=session, principal=principal, visit_id=visit_id)
    )


@router.post(
    "/{visit_id}/check-in",
    response_model=CheckResult,
    summary="Arrival: GPS and handset time; anomalies become flags, never refusals",
    responses={
        201: {"description": "checked in"},
        200: {"model": CheckResult, "description": "the same check-in again"},
    },
    status_code=201,
)
async def check_in(
    visit_id: uuid.UUID,
    body: CheckIn,
    session: SessionDep,
    response: Response,
    principal: Principal = Handset,
) -> CheckResult:
    result, changed = await service.check_in(
        session=session, principal=principal, visit_id=visit_id, body=body
    )
    if not changed:
        response.status_code = 200
    return result


@router.post(
    "/{visit_id}/check-out",
    response_model=CheckResult,
    summary="Departure: GPS, handset time, items done, note",
    responses={
        201: {"description": "checked out"},
        200: {"model": CheckResult, "description": "the same check-out again"},
    },
    status_code=201,
)
async def check_out(
    visit_id: uuid.UUID,
    body: CheckOut,
    session: SessionDep,
    response: Response,
    principal: Principal = Handset,
) -> CheckResult:
    result, changed = await service.check_out(
        session=session, principal=principal, visit_id=visit_id, body=body
    )
    if not changed:
        response.status_code = 200
    return result


@router.post(
    "/{visit_id}/flags/{code}/review",
    response_model=FlagRead,
    summary="A supervisor clears (the visit counts again) or confirms a flag; audited",
)
async def review_flag(
    visit_id: uuid.UUID,
    code: str,
    review: FlagReview,
    session: SessionDep,
    principal: Principal = Reviewer,
) -> FlagRead:
    return FlagRead.model_validate(
        await service.review_flag(
            session=session, principal=principal, visit_id=visit_id, code=code, review=review
        )
    )
