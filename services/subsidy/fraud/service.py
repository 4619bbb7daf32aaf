"""Fraud (篇七 管理监督): an elder found to have obtained vouchers by fraud repays them and is
disqualified for life; an organisation repays and no longer serves or settles. A flag takes
effect in every later run (the engine refuses the days from ``effective_from``), at once for
redemptions, records the repayment as a receivable, and is audited."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.common import SERVICE
from services.subsidy.fraud.models import FraudFlag
from services.subsidy.fraud.schemas import FraudFlagCreate, RepaymentCreate
from services.subsidy.ledger import service as ledger
from services.subsidy.ledger.models import Entry
from services.subsidy.ledger.service import Draft, Leg
from shared import audit, clock, readmodel, scoping
from shared.auth import Principal
from shared.errors import NotFound, Unprocessable
from shared.i18n import T


async def create(
    *, session: AsyncSession, principal: Principal, body: FraudFlagCreate
) -> FraudFlag:
    if body.elder_id is not None:
        await scoping.require_elder(session, principal, body.elder_id)
    else:
        orgs = readmodel.orgs
        found = await session.scalar(
            select(orgs.c.id).where(orgs.c.id == body.org_id, scoping.org_scope(principal, orgs))
        )
        if found is None:
            raise NotFound(T(f"未找到机构 {body.org_id}", f"org {body.org_id} not found"))
    flag = FraudFlag(
        subject=body.subject,
        elder_id=body.elder_id,
        org_id=body.org_id,
        reason=body.reason,
        found_on=body.found_on,
        effective_from=body.effective_from or body.found_on,
        repay_fen=body.repay_fen,
        fund=body.fund,
        created_by=principal.sub,
    )
    session.add(flag)
    await session.flush()
    if body.repay_fen:
        period = ledger.period_for(
            clock.today().replace(day=1), await ledger.closed_periods(session)
        )
        flag.posting_id = await ledger.post(
            session,
            Draft(
                kind="fraud_receivable",
                period=period,
                legs=[
                    Leg("receivable", body.fund or "-", body.repay_fen, body.elder_id, body.org_id),
                    Leg(
                        "recoveries", body.fund or "-", -body.repay_fen, body.elder_id, body.org_id
                    ),
                ],
                created_by=principal.sub,
                elder_id=body.elder_id,
                org_id=body.org_id,
                memo=f"fraud flag {flag.id}",
            ),
        )
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="fraud_flagged",
        resource_type=body.subject,
        resource_id=body.elder_id or body.org_id,  # type: ignore[arg-type]
        fields=[f"flag:{flag.id}", f"repay_fen:{body.repay_fen}"],
    )
    await session.flush()
    return flag


async def repaid(session: AsyncSession, flag: FraudFlag) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(Entry.amount_fen), 0)).where(
            Entry.account == "receivable",
            Entry.amount_fen < 0,
            (Entry.elder_id == flag.elder_id) if flag.elder_id else (Entry.org_id == flag.org_id),
        )
    )
    return -int(total or 0)


def readable(principal: Principal):
    return select(FraudFlag).where(
        scoping.by_elder(principal, FraudFlag.elder_id) | (FraudFlag.subject == "org")
        if not scoping.sees_everything(principal)
        else FraudFlag.id.is_not(None)
    )


async def get(*, session: AsyncSession, principal: Principal, flag_id: uuid.UUID) -> FraudFlag:
    flag = await session.scalar(readable(principal).where(FraudFlag.id == flag_id))
    if flag is None:
        raise NotFound(T(f"未找到记录 {flag_id}", f"fraud flag {flag_id} not found"))
    return flag


async def repay(
    *, session: AsyncSession, principal: Principal, flag: FraudFlag, body: RepaymentCreate
) -> FraudFlag:
    outstanding = flag.repay_fen - await repaid(session, flag)
    if body.amount_fen > outstanding:
        raise Unprocessable(
            T(f"还款超过未还金额 {outstanding} 分", f"more than the {outstanding} fen outstanding"),
            errors=[("amount_fen", T(f"不能超过 {outstanding}", f"at most {outstanding}"))],
        )
    period = ledger.period_for(clock.today().replace(day=1), await ledger.closed_periods(session))
    await ledger.post(
        session,
        Draft(
            kind="repayment",
            period=period,
            legs=[
                Leg("fund", flag.fund or "-", body.amount_fen, flag.elder_id, None),
                Leg("receivable", flag.fund or "-", -body.amount_fen, flag.elder_id, flag.org_id),
            ],
            created_by=principal.sub,
            elder_id=flag.elder_id,
            org_id=flag.org_id,
            memo=f"repayment of fraud flag {flag.id} on {body.paid_on}",
        ),
    )
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="fraud_repaid",
        resource_type=flag.subject,
        resource_id=flag.elder_id or flag.org_id,  # type: ignore[arg-type]
        fields=[f"flag:{flag.id}", f"amount_fen:{body.amount_fen}"],
    )
    return flag
