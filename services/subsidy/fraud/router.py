from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.subsidy.fraud import service
from services.subsidy.fraud.models import FraudFlag
from services.subsidy.fraud.schemas import FraudFlagCreate, FraudFlagRead, RepaymentCreate
from shared.auth import Principal, Role, require_roles
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/fraud-flags", tags=["fraud"])
Admin = require_roles(Role.admin)
Officer = require_roles(Role.admin, Role.street, Role.community)


async def _read(session, flag: FraudFlag) -> FraudFlagRead:
    read = FraudFlagRead.model_validate(flag)
    read.repaid_fen = await service.repaid(session, flag) if flag.repay_fen else 0
    return read


@router.post(
    "",
    status_code=201,
    response_model=FraudFlagRead,
    summary="Flag fraud: stops future entitlements (for life, for an elder), records the "
    "amount to repay, audited",
)
async def create_flag(
    body: FraudFlagCreate, session: SessionDep, principal: Principal = Admin
) -> FraudFlagRead:
    return await _read(
        session, await service.create(session=session, principal=principal, body=body)
    )


@router.get("", response_model=Page[FraudFlagRead])
async def list_flags(
    session: SessionDep,
    principal: Principal = Officer,
    elder_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[FraudFlagRead]:
    stmt = service.readable(principal)
    if elder_id:
        stmt = stmt.where(FraudFlag.elder_id == elder_id)
    if org_id:
        stmt = stmt.where(FraudFlag.org_id == org_id)
    page = await paginate(session, stmt, key=FraudFlag.id, cursor=cursor, limit=limit)
    return Page[FraudFlagRead](
        items=[await _read(session, f) for f in page.items], next_cursor=page.next_cursor
    )


@router.post("/{flag_id}/repayments", response_model=FraudFlagRead, summary="Record a repayment")
async def repay(
    flag_id: uuid.UUID, body: RepaymentCreate, session: SessionDep, principal: Principal = Admin
) -> FraudFlagRead:
    flag = await service.get(session=session, principal=principal, flag_id=flag_id)
    await service.repay(session=session, principal=principal, flag=flag, body=body)
    return await _read(session, flag)
