from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from services.dispatch.access import Manager
from services.dispatch.routes import service
from services.dispatch.routes.schemas import DayCheck, DayPlan, PlanDayIn, Tasks
from shared import clock
from shared.auth import Principal, StaffReader
from shared.dates import IsoDate
from shared.uow import SessionDep

router = APIRouter(tags=["routes and tasks"])


@router.get(
    "/v1/staff/{staff_id}/tasks",
    response_model=Tasks,
    summary="The handset feed: today's route and any offered dispatch "
    "(a caregiver sees only its own)",
)
async def staff_tasks(
    staff_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = StaffReader,
    day: IsoDate | None = None,
) -> Tasks:
    return await service.tasks(
        session=session, principal=principal, staff_id=staff_id, day=day or clock.today()
    )


@router.post(
    "/v1/routes/plan",
    response_model=DayPlan,
    summary="Assign a day's visits to caregivers (VROOM, greedy baseline alongside); "
    "re-plan after a sick call",
)
async def plan_day(
    body: PlanDayIn, request: Request, session: SessionDep, principal: Principal = Manager
) -> DayPlan:
    return await service.plan_day(
        session=session, principal=principal, body=body, travel=request.app.state.travel
    )


@router.get(
    "/v1/routes/check",
    response_model=DayCheck,
    summary="Re-check a day's assignment as it stands (VROOM plan mode): ETAs and violations",
)
async def check_day(
    day: IsoDate,
    org_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Principal = Manager,
    station_id: uuid.UUID | None = None,
) -> DayCheck:
    return await service.check_day(
        session=session,
        principal=principal,
        org_id=org_id,
        day=day,
        station_id=station_id,
        travel=request.app.state.travel,
    )
