"""Service vouchers (消费券, 篇七): issued by the monthly run, spent on verified visits at
approved organisations, unused balance lapses back to the fund after the month (no
roll-over unless a policy says so) once late-verified visits had their grace period."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.common import SERVICE
from services.subsidy.fraud.models import FraudFlag
from services.subsidy.ledger import service as ledger
from services.subsidy.ledger.service import Draft, Leg
from services.subsidy.policies.engine import month_bounds
from services.subsidy.vouchers.models import Redemption, Voucher, VoucherOrg
from services.subsidy.vouchers.schemas import RedemptionCreate, VoucherOrgCreate
from shared import audit, clock, scoping
from shared.auth import Principal, Role
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from shared.i18n import T
from shared.visits_readmodel import verified_visits as vv


def readable(principal: Principal) -> Select:
    return select(Voucher).where(scoping.by_elder(principal, Voucher.elder_id))


async def approve_org(
    *, session: AsyncSession, principal: Principal, body: VoucherOrgCreate
) -> VoucherOrg:
    row = await session.get(VoucherOrg, (body.org_id, body.policy_code))
    if row is None:
        row = VoucherOrg(
            org_id=body.org_id, policy_code=body.policy_code, approved_by=principal.sub
        )
        session.add(row)
    row.approved_from = body.approved_from
    row.approved_to = body.approved_to
    row.approved_by = principal.sub
    await session.flush()
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="voucher_org_approved",
        resource_type="org",
        resource_id=body.org_id,
        fields=[body.policy_code],
    )
    return row


async def _visit(session: AsyncSession, visit_id: uuid.UUID):
    exists = await session.scalar(
        text("SELECT to_regclass('dispatch.verified_visits') IS NOT NULL")
    )
    if not exists:
        raise Conflict(
            T("调度服务的核验上门记录尚不可用", "dispatch's verified visits are not available yet"),
            slug="visits-unavailable",
        )
    row = (await session.execute(select(vv).where(vv.c.visit_id == visit_id))).first()
    if row is None:
        raise Unprocessable(
            T(f"{visit_id} 不是已核验的上门服务", f"{visit_id} is not a verified visit"),
            errors=[
                (
                    "visit_id",
                    T(
                        "不是已核验的上门服务（未签出或有未处理的异常）",
                        "not a verified visit (not checked out, or a flag is open)",
                    ),
                )
            ],
        )
    return row


async def redeem(
    *, session: AsyncSession, principal: Principal, body: RedemptionCreate
) -> Redemption:
    visit = await _visit(session, body.visit_id)
    if principal.role in (Role.org_admin, Role.caregiver) and visit.org_id != principal.org:
        raise Forbidden(T("只能为本机构的上门服务核销", "an org redeems only its own visits"))
    earlier = await session.scalar(select(Redemption).where(Redemption.visit_id == body.visit_id))
    if earlier is not None:
        raise Conflict(
            T(
                "该上门服务已核销，不重复支付",
                "this visit is already paid; a visit is never paid twice",
            ),
            slug="visit-already-redeemed",
            redemption_id=str(earlier.id),
        )
    day: date = visit.service_day
    barred = await session.scalar(
        select(FraudFlag.id).where(
            FraudFlag.subject == "org",
            FraudFlag.org_id == visit.org_id,
            FraudFlag.effective_from <= day,
        )
    )
    if barred is not None:
        raise Unprocessable(
            T("服务机构已被取消服务资格，不予结算", "the organisation has been disqualified"),
            slug="org-disqualified",
            errors=[("visit_id", T("机构已被取消资格", "organisation disqualified"))],
        )
    disqualified = await session.scalar(
        select(FraudFlag.id).where(
            FraudFlag.subject == "elder",
            FraudFlag.elder_id == visit.elder_id,
            FraudFlag.effective_from <= day,
        )
    )
    if disqualified is not None:
        raise Unprocessable(
            T(
                "老人已被取消享受补助资格，消费券不能使用",
                "the elder has been disqualified; vouchers cannot be used",
            ),
            slug="elder-disqualified",
            errors=[("visit_id", T("老人已被取消资格", "elder disqualified"))],
        )
    month = day.replace(day=1)
    approved = select(VoucherOrg.policy_code).where(
        VoucherOrg.org_id == visit.org_id,
        VoucherOrg.approved_from <= day,
        (VoucherOrg.approved_to.is_(None)) | (VoucherOrg.approved_to >= day),
    )
    voucher = await session.scalar(
        select(Voucher)
        .where(
            Voucher.elder_id == visit.elder_id,
            Voucher.month == month,
            Voucher.policy_code.in_(approved),
        )
        .order_by(Voucher.created_at)
        .limit(1)
        .with_for_update()
    )
    if voucher is None:
        any_voucher = await session.scalar(
            select(Voucher.policy_code)
            .where(Voucher.elder_id == visit.elder_id, Voucher.month == month)
            .limit(1)
        )
        if any_voucher is not None:
            raise Unprocessable(
                T(
                    f"该机构不是 {any_voucher} 消费券的定点服务机构",
                    f"the organisation is not approved for {any_voucher} vouchers",
                ),
                slug="org-not-approved",
                errors=[("visit_id", T("机构未获定点资格", "organisation not approved"))],
            )
    today = clock.today()
    usable = 0
    if voucher is not None and voucher.redeemable_until >= today:
        usable = max(0, voucher.amount_fen - voucher.redeemed_fen - voucher.lapsed_fen)
    subsidy = min(body.price_fen, usable)
    copay = body.price_fen - subsidy
    closed = await ledger.closed_periods(session)
    period = ledger.period_for(today.replace(day=1), closed)
    legs: list[Leg] = []
    fund = voucher.fund if voucher is not None else None
    if subsidy:
        legs += [
            Leg("allowance", fund or "-", -subsidy, visit.elder_id, None),
            Leg("org_payable", fund or "-", subsidy, visit.elder_id, visit.org_id),
        ]
    if copay:
        legs += [
            Leg("self_pay", "self_pay", -copay, visit.elder_id, None),
            Leg("self_pay", "self_pay", copay, visit.elder_id, visit.org_id),
        ]
    posting_id = None
    if legs:
        posting_id = await ledger.post(
            session,
            Draft(
                kind="redemption",
                period=period,
                legs=legs,
                created_by=principal.sub,
                entitlement_month=month,
                elder_id=visit.elder_id,
                org_id=visit.org_id,
                policy_code=voucher.policy_code if voucher else None,
                memo=f"visit {body.visit_id}",
            ),
        )
    if voucher is not None and subsidy:
        voucher.redeemed_fen += subsidy
    redemption = Redemption(
        visit_id=body.visit_id,
        voucher_id=voucher.id if voucher else None,
        elder_id=visit.elder_id,
        org_id=visit.org_id,
        service_day=day,
        price_fen=body.price_fen,
        subsidy_fen=subsidy,
        copay_fen=copay,
        fund=fund,
        posting_id=posting_id,
        created_by=principal.sub,
    )
    session.add(redemption)
    await session.flush()
    return redemption


async def lapse(
    *, session: AsyncSession, principal: Principal, month: date, today: date
) -> tuple[int, int]:
    """Return the unspent balance of ``month``'s vouchers to their funds, once their
    redemption window has passed. Idempotent: a lapsed voucher has no balance left."""
    rows = list(
        await session.scalars(
            select(Voucher)
            .where(Voucher.month == month, Voucher.redeemable_until < today)
            .where(Voucher.amount_fen - Voucher.redeemed_fen - Voucher.lapsed_fen > 0)
            .with_for_update()
        )
    )
    closed = await ledger.closed_periods(session)
    period = ledger.period_for(today.replace(day=1), closed)
    total = 0
    for v in rows:
        rest = v.amount_fen - v.redeemed_fen - v.lapsed_fen
        await ledger.post(
            session,
            Draft(
                kind="lapse",
                period=period,
                legs=[
                    Leg("allowance", v.fund, -rest, v.elder_id, None),
                    Leg("fund", v.fund, rest, v.elder_id, None),
                ],
                created_by=principal.sub,
                entitlement_month=month,
                elder_id=v.elder_id,
                policy_code=v.policy_code,
                memo="unused vouchers lapse (no roll-over)",
            ),
        )
        v.lapsed_fen += rest
        total += rest
    await session.flush()
    return len(rows), total


async def get_redemption(
    *, session: AsyncSession, principal: Principal, redemption_id: uuid.UUID
) -> Redemption:
    row = await session.get(Redemption, redemption_id)
    missing = NotFound(
        T(f"未找到核销记录 {redemption_id}", f"redemption {redemption_id} not found")
    )
    if row is None:
        raise missing
    if principal.role in (Role.org_admin, Role.caregiver):
        if row.org_id != principal.org:
            raise missing
        return row
    await scoping.require_elder(session, principal, row.elder_id)
    return row


def month_end(month: date) -> date:
    return month_bounds(month)[1]
