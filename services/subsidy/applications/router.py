from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from sqlalchemy import select

from services.subsidy.applications import service
from services.subsidy.applications.models import Application
from services.subsidy.applications.schemas import (
    ApplicationCreate,
    ApplicationDecision,
    ApplicationRead,
)
from shared import clock, scoping
from shared.auth import Principal, Role, ScopedReader, require_roles
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/applications", tags=["applications"])
Applicant = require_roles(Role.admin, Role.street, Role.community, Role.family)
Reviewer = require_roles(Role.admin, Role.street, Role.community)


@router.post(
    "", status_code=201, response_model=ApplicationRead, summary="Apply (申请) for a subsidy"
)
async def create_application(
    body: ApplicationCreate, session: SessionDep, principal: Principal = Applicant
) -> ApplicationRead:
    return await service.to_read(
        session, await service.create(session=session, principal=principal, body=body)
    )


@router.get("", response_model=Page[ApplicationRead])
async def list_applications(
    session: SessionDep,
    principal: Principal = ScopedReader,
    elder_id: uuid.UUID | None = None,
    status: Literal["submitted", "approved", "refused"] | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ApplicationRead]:
    stmt = select(Application).where(scoping.by_elder(principal, Application.elder_id))
    if elder_id:
        stmt = stmt.where(Application.elder_id == elder_id)
    if status:
        stmt = stmt.where(Application.status == status)
    page = await paginate(session, stmt, key=Application.id, cursor=cursor, limit=limit)
    return Page[ApplicationRead](
        items=[await service.to_read(session, a) for a in page.items], next_cursor=page.next_cursor
    )


@router.get("/{application_id}", response_model=ApplicationRead)
async def get_application(
    application_id: uuid.UUID, session: SessionDep, principal: Principal = ScopedReader
) -> ApplicationRead:
    app = await service.get(session=session, principal=principal, application_id=application_id)
    return await service.to_read(session, app)


@router.post(
    "/{application_id}/decisions",
    response_model=ApplicationRead,
    summary="Decide the current stage: community 初审 (10 working days), street 复审 (5), "
    "district 核准 (10); a refusal needs written reasons",
)
async def decide_application(
    application_id: uuid.UUID,
    body: ApplicationDecision,
    session: SessionDep,
    principal: Principal = Reviewer,
) -> ApplicationRead:
    app = await service.get(session=session, principal=principal, application_id=application_id)
    app = await service.decide(
        session=session, principal=principal, app=app, body=body, today=clock.today()
    )
    return await service.to_read(session, app)
