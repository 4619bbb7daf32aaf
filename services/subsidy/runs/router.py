from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from sqlalchemy import select

from services.subsidy.common import Month, parse_month
from services.subsidy.runs import service
from services.subsidy.runs.models import Run
from services.subsidy.runs.schemas import DecisionRead, RunCreate, RunRead
from shared.auth import Principal, Role, StaffReader, require_roles
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(tags=["runs"])
Admin = require_roles(Role.admin)
Officer = require_roles(Role.admin, Role.street, Role.community)


@router.post(
    "/v1/runs",
    status_code=201,
    response_model=RunRead,
    summary="Run a month for every elder in your region (in the background; poll GET)",
)
async def create_run(
    body: RunCreate, request: Request, session: SessionDep, principal: Principal = Admin
) -> RunRead:
    run = await service.create(session=session, principal=principal, month=parse_month(body.month))
    worker = getattr(request.app.state, "run_worker", None)
    if worker is not None:
        worker.wake()  # it claims the run once this request has committed
    return service.to_read(run)


@router.get("/v1/runs", response_model=Page[RunRead], summary="Runs, newest first")
async def list_runs(
    session: SessionDep,
    principal: Principal = Officer,
    month: Month | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[RunRead]:
    stmt = select(Run).where(service.visible(principal))
    if month:
        stmt = stmt.where(Run.month == parse_month(month))
    return await paginate(
        session, stmt, key=Run.id, cursor=cursor, limit=limit, descending=True, read=service.to_read
    )


@router.get("/v1/runs/{run_id}", response_model=RunRead, summary="A run and its progress")
async def get_run(
    run_id: uuid.UUID, session: SessionDep, principal: Principal = Officer
) -> RunRead:
    return service.to_read(await service.get(session=session, principal=principal, run_id=run_id))


@router.get(
    "/v1/decisions",
    response_model=Page[DecisionRead],
    summary="An elder's decision records (newest first), explained again from frozen facts",
)
async def list_decisions(
    elder_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = StaffReader,
    month: Month | None = None,
    explain: bool = True,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> Page[DecisionRead]:
    return await service.decisions(
        session=session,
        principal=principal,
        elder_id=elder_id,
        month=parse_month(month) if month else None,
        explain=explain,
        cursor=cursor,
        limit=limit,
    )
