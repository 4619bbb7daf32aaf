"""Subsidies an elder received outside this platform (篇一: an earlier 居家适老化改造补助 counts
against the 3000-yuan adaptation cap)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlalchemy import select

from services.subsidy.benefits.models import Benefit
from services.subsidy.benefits.schemas import BenefitCreate, BenefitRead
from shared import clock, scoping
from shared.auth import CaseWriter, Principal, StaffReader
from shared.errors import Unprocessable
from shared.i18n import T
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/benefits", tags=["benefits"])


@router.post("", status_code=201, response_model=BenefitRead, summary="Record an earlier subsidy")
async def create_benefit(
    body: BenefitCreate, session: SessionDep, principal: Principal = CaseWriter
) -> BenefitRead:
    await scoping.require_elder(session, principal, body.elder_id)
    if body.received_on > clock.today():
        raise Unprocessable(
            T("领取日期不能晚于今天", "received_on cannot be in the future"),
            errors=[("received_on", T("不能晚于今天", "must not be in the future"))],
        )
    row = Benefit(**body.model_dump(), recorded_by=principal.sub)
    session.add(row)
    await session.flush()
    return BenefitRead.model_validate(row)


@router.get("", response_model=Page[BenefitRead])
async def list_benefits(
    session: SessionDep,
    principal: Principal = StaffReader,
    elder_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[BenefitRead]:
    stmt = select(Benefit).where(scoping.by_elder(principal, Benefit.elder_id))
    if elder_id:
        stmt = stmt.where(Benefit.elder_id == elder_id)
    return await paginate(
        session, stmt, key=Benefit.id, cursor=cursor, limit=limit, read=BenefitRead.model_validate
    )
