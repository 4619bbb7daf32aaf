from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.dispatch.access import Manager
from services.dispatch.plans import service
from services.dispatch.plans.models import Plan
from services.dispatch.plans.schemas import PlanCreate, PlanRead
from shared.auth import Principal, StaffReader
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/plans", tags=["plans"])


@router.post(
    "",
    status_code=201,
    response_model=PlanRead,
    summary="Recurring visits of a bed (RRULE, Asia/Shanghai), generated ahead into visits",
)
async def create_plan(
    plan_in: PlanCreate, session: SessionDep, principal: Principal = Manager
) -> PlanRead:
    plan, made = await service.create(session=session, principal=principal, plan_in=plan_in)
    read = PlanRead.model_validate(plan)
    read.generated = made
    return read


@router.get("", response_model=Page[PlanRead], summary="Plans in your scope")
async def list_plans(
    session: SessionDep,
    principal: Principal = StaffReader,
    bed_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[PlanRead]:
    stmt = service.readable_statement(principal)
    if bed_id:
        stmt = stmt.where(Plan.bed_id == bed_id)
    return await paginate(
        session, stmt, key=Plan.id, cursor=cursor, limit=limit, read=PlanRead.model_validate
    )


@router.get("/{plan_id}", response_model=PlanRead)
async def get_plan(
    plan_id: uuid.UUID, session: SessionDep, principal: Principal = StaffReader
) -> PlanRead:
    return PlanRead.model_validate(
        await service.get(session=session, principal=principal, plan_id=plan_id)
    )
