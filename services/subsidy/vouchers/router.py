from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.subsidy.common import Month, month_text, parse_month
from services.subsidy.vouchers import service
from services.subsidy.vouchers.models import Voucher
from services.subsidy.vouchers.schemas import (
    LapseCreate,
    LapseRead,
    RedemptionCreate,
    RedemptionRead,
    VoucherOrgCreate,
    VoucherOrgRead,
    VoucherRead,
)
from shared import clock
from shared.auth import Principal, Role, ScopedReader, require_roles
from shared.errors import problem_doc
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/vouchers", tags=["vouchers"])
Admin = require_roles(Role.admin)
Redeemer = require_roles(Role.admin, Role.org_admin, Role.service)


def _read(v: Voucher) -> VoucherRead:
    read = VoucherRead.model_validate(v)
    read.balance_fen = v.amount_fen - v.redeemed_fen - v.lapsed_fen
    return read


@router.get("", response_model=Page[VoucherRead], summary="Vouchers of the elders you see")
async def list_vouchers(
    session: SessionDep,
    principal: Principal = ScopedReader,
    elder_id: uuid.UUID | None = None,
    month: Month | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[VoucherRead]:
    stmt = service.readable(principal)
    if elder_id:
        stmt = stmt.where(Voucher.elder_id == elder_id)
    if month:
        stmt = stmt.where(Voucher.month == parse_month(month))
    return await paginate(session, stmt, key=Voucher.id, cursor=cursor, limit=limit, read=_read)


@router.post(
    "/redemptions",
    status_code=201,
    response_model=RedemptionRead,
    summary="Spend vouchers on one verified visit; co-pay = price − subsidy (never below 0)",
    responses={
        409: problem_doc("the visit was already paid, or dispatch's visits are unavailable"),
        422: problem_doc("not a verified visit, organisation not approved or disqualified"),
    },
)
async def redeem(
    body: RedemptionCreate, session: SessionDep, principal: Principal = Redeemer
) -> RedemptionRead:
    return RedemptionRead.model_validate(
        await service.redeem(session=session, principal=principal, body=body)
    )


@router.get("/redemptions/{redemption_id}", response_model=RedemptionRead)
async def get_redemption(
    redemption_id: uuid.UUID, session: SessionDep, principal: Principal = ScopedReader
) -> RedemptionRead:
    return RedemptionRead.model_validate(
        await service.get_redemption(
            session=session, principal=principal, redemption_id=redemption_id
        )
    )


@router.post(
    "/orgs",
    status_code=201,
    response_model=VoucherOrgRead,
    summary="Approve an organisation to take a policy's vouchers (定点服务机构)",
)
async def approve_org(
    body: VoucherOrgCreate, session: SessionDep, principal: Principal = Admin
) -> VoucherOrgRead:
    return VoucherOrgRead.model_validate(
        await service.approve_org(session=session, principal=principal, body=body)
    )


@router.post(
    "/lapse",
    response_model=LapseRead,
    summary="Return a past month's unspent vouchers to their funds (no roll-over)",
)
async def lapse(body: LapseCreate, session: SessionDep, principal: Principal = Admin) -> LapseRead:
    month = parse_month(body.month)
    n, fen = await service.lapse(
        session=session, principal=principal, month=month, today=clock.today()
    )
    return LapseRead(month=month_text(month), vouchers=n, lapsed_fen=fen)
