"""Organisation rewards (篇一 以奖代补): a one-time reward for ≥ 80 / ≥ 100 operating beds
with satisfaction ≥ 95 %. Beds count when active and actually served (a verified visit in
the last 30 days); the satisfaction figure is an input until surveys exist."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.facts.service import bed_spans
from services.subsidy.ledger import service as ledger
from services.subsidy.ledger.service import Draft, Leg
from services.subsidy.policies import service as policies
from services.subsidy.rewards.models import Reward
from services.subsidy.rewards.schemas import (
    RewardEvaluation,
    RewardQuery,
    RewardReason,
    RewardReasonCode,
)
from shared import clock
from shared import readmodel as rm
from shared.auth import Principal
from shared.errors import Conflict, Unprocessable
from shared.i18n import T
from shared.money import fen_to_yuan
from shared.visits_readmodel import verified_visits as vv


def _reason(code: RewardReasonCode, tier: str, message: T) -> RewardReason:
    # rendered now, in the request's language (the evaluation is a response of its own)
    return RewardReason(code=code, tier=tier, message=str(message))


async def evaluate(*, session: AsyncSession, query: RewardQuery) -> RewardEvaluation:
    version = await policies.get_version(session, query.policy_code)
    doc = version.doc
    beds = (
        await session.execute(
            select(
                rm.beds.c.id,
                rm.beds.c.elder_id,
                rm.beds.c.org_id,
                rm.beds.c.policy_code,
                rm.beds.c.started_on,
                rm.beds.c.suspended_on,
                rm.beds.c.terminated_on,
            ).where(rm.beds.c.org_id == query.org_id, rm.beds.c.started_on.is_not(None))
        )
    ).all()
    events: dict = {}
    if beds:
        for r in (
            await session.execute(
                select(
                    rm.bed_events.c.bed_id,
                    rm.bed_events.c.to_status,
                    rm.bed_events.c.effective_on,
                    rm.bed_events.c.created_at,
                ).where(rm.bed_events.c.bed_id.in_([b[0] for b in beds]))
            )
        ).all():
            events.setdefault(r[0], []).append((r[2], r[3], r[1]))
    active = [b for b in beds if any(s.holds(query.as_of) for s in bed_spans(b, events.get(b[0])))]
    served: set = set()
    has_visits = await session.scalar(
        text("SELECT to_regclass('dispatch.verified_visits') IS NOT NULL")
    )
    if active and has_visits:
        served = set(
            await session.scalars(
                select(vv.c.bed_id).where(
                    vv.c.bed_id.in_([b[0] for b in active]),
                    vv.c.service_day > query.as_of - timedelta(days=30),
                    vv.c.service_day <= query.as_of,
                )
            )
        )
    operating = len(served)
    reached = None
    reasons: list[RewardReason] = []
    for reward in sorted(doc.rewards, key=lambda r: r.min_beds):
        ok_beds = operating >= reward.min_beds
        ok_sat = query.satisfaction_pct >= reward.min_satisfaction_pct
        if ok_beds and ok_sat:
            reached = reward
            continue
        name, ref, need_beds = reward.name, reward.reference, reward.min_beds
        if not ok_beds:
            reasons.append(
                _reason(
                    "too_few_operating_beds",
                    reward.id,
                    T(
                        f"{name.zh}：实际运营床位 {operating} 张，不足 {need_beds} 张（{ref}）",
                        f"{name.en}: {operating} operating beds, fewer than {need_beds} ({ref})",
                    ),
                )
            )
        if not ok_sat:
            pct, need = query.satisfaction_pct, reward.min_satisfaction_pct
            reasons.append(
                _reason(
                    "satisfaction_too_low",
                    reward.id,
                    T(
                        f"{name.zh}：满意率 {pct}% 未达 {need}%（{ref}）",
                        f"{name.en}: satisfaction {pct}% is below {need}% ({ref})",
                    ),
                )
            )
    if reached is not None and reached.fen is None:
        reasons.append(
            _reason(
                "amount_not_set",
                reached.id,
                T(
                    f"{reached.name.zh}：奖励金额尚未设定（草案，原文为 xx 万元）",
                    f"{reached.name.en}: the amount is not set yet (draft)",
                ),
            )
        )
    return RewardEvaluation(
        org_id=query.org_id,
        policy_code=doc.code,
        policy_version=doc.version,
        as_of=query.as_of,
        active_beds=len(active),
        operating_beds=operating,
        satisfaction_pct=query.satisfaction_pct,
        tier=reached.id if reached else None,
        amount_fen=reached.fen if reached else None,
        reasons=reasons,
    )


async def grant(*, session: AsyncSession, principal: Principal, query: RewardQuery) -> Reward:
    result = await evaluate(session=session, query=query)
    if result.tier is None:
        raise Unprocessable(
            T("未达到奖励条件", "the reward's conditions are not met"),
            slug="reward-not-reached",
            title=T("未达到奖励条件", "Reward not reached"),
            policy_code=result.policy_code,
            reasons=[r.model_dump() for r in result.reasons],
        )
    if result.amount_fen is None:
        raise Unprocessable(
            T("奖励金额尚未设定，不能发放", "the reward amount is not set; it cannot be paid"),
            slug="policy-incomplete",
            errors=[
                ("policy_code", T("策略金额空缺（草案）", "the policy's amount is blank (draft)"))
            ],
        )
    if await session.scalar(
        select(Reward.id).where(
            Reward.org_id == query.org_id, Reward.policy_code == query.policy_code
        )
    ):
        raise Conflict(
            T("一次性奖励已发放", "the one-time reward was already granted"), slug="reward-granted"
        )
    version = await policies.get_version(session, query.policy_code)
    tier = next(r for r in version.doc.rewards if r.id == result.tier)
    period = ledger.period_for(clock.today().replace(day=1), await ledger.closed_periods(session))
    posting = await ledger.post(
        session,
        Draft(
            kind="reward",
            period=period,
            legs=[
                Leg("fund", tier.fund, -result.amount_fen, None, None),
                Leg("org_payable", tier.fund, result.amount_fen, None, query.org_id),
            ],
            created_by=principal.sub,
            org_id=query.org_id,
            policy_code=query.policy_code,
            rule=tier.id,
            memo=f"reward {tier.id}: {fen_to_yuan(result.amount_fen)}",
        ),
    )
    row = Reward(
        org_id=query.org_id,
        policy_code=query.policy_code,
        tier=tier.id,
        as_of=query.as_of,
        operating_beds=result.operating_beds,
        satisfaction_pct=query.satisfaction_pct,
        amount_fen=result.amount_fen,
        fund=tier.fund,
        posting_id=posting,
        created_by=principal.sub,
    )
    session.add(row)
    await session.flush()
    return row
