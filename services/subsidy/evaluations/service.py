"""One elder, one month: the facts, the policy in force, the engine, the explanation."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.common import month_text
from services.subsidy.evaluations.schemas import EvaluationRead, LineRead, PartRead, RefusedRead
from services.subsidy.facts import service as facts
from services.subsidy.policies import engine
from services.subsidy.policies import service as policies
from services.subsidy.policies.facts import ElderFacts
from shared import scoping
from shared.auth import Principal
from shared.errors import NotFound, Unprocessable
from shared.i18n import T, text


async def load_elder(session: AsyncSession, elder_id: uuid.UUID, month: date) -> facts.World:
    first, last, _ = engine.month_bounds(month)
    conn = await facts.raw_connection(session)
    return await facts.load(conn, facts.Scope(elder_ids=[elder_id]), start=first, end=last)


async def evaluate(
    *,
    session: AsyncSession,
    principal: Principal,
    elder_id: uuid.UUID,
    month: date,
    policy_code: str | None,
) -> EvaluationRead:
    await scoping.require_elder(session, principal, elder_id)
    world = await load_elder(session, elder_id, month)
    if not world.elders:
        raise NotFound(T(f"未找到老人 {elder_id}", f"elder {elder_id} not found"))
    elder = world.elders[0]
    if policy_code:
        versions = await policies.in_force(
            session, month=month, code=policy_code, include_drafts=True
        )
        if not versions:
            raise Unprocessable(
                T(
                    f"{month_text(month)} 没有生效的策略 {policy_code}",
                    f"no version of {policy_code} is in force in {month_text(month)}",
                ),
                slug="no-policy",
                errors=[
                    ("policy_code", T("该月没有此策略的版本", "no version in force that month"))
                ],
            )
        chosen, others = versions[0], []
    else:
        # Every hukou the elder held that month (a move mid-month: two), each policy at its
        # most specific match; the month's days at the other place simply do not qualify.
        first, last, _ = engine.month_bounds(month)
        hukous = elder.hukou_regions(first, last)
        found: dict[str, tuple[int, policies.Version]] = {}
        for hukou in hukous:
            for v in await policies.in_force(session, month=month, region=hukou):
                spec = max(len(p) for p in v.row.regions if hukou.startswith(p))
                if v.row.code not in found or spec > found[v.row.code][0]:
                    found[v.row.code] = (spec, v)
        ranked = sorted(found.values(), key=lambda t: (-t[0], t[1].row.code))
        versions = [v for _, v in ranked]
        where = "、".join(hukous)
        if not versions:
            raise Unprocessable(
                T(
                    f"{month_text(month)} 没有覆盖户籍地 {where} 的生效策略",
                    f"no active policy covers hukou region {', '.join(hukous)} in "
                    f"{month_text(month)}",
                ),
                slug="no-policy",
                errors=[
                    (
                        "elder_id",
                        T("户籍地没有适用的策略", "no policy covers the elder's hukou region"),
                    )
                ],
            )
        # Equally specific policies (a district runs several): the one that pays the elder
        # most is the answer; the others are named in also_applicable.
        spec = ranked[0][0]
        tied = [v for s, v in ranked if s == spec]
        scored = [
            (engine.evaluate(v.doc, elder, month, barred_orgs=world.barred_orgs), v) for v in tied
        ]
        best_ev, chosen = max(
            scored, key=lambda t: (t[0].total_fen, t[1].row.code == tied[0].row.code)
        )
        others = [v for v in versions if v is not chosen]
        return render(best_ev, draft=False, also=[v.row.code for v in others])
    ev = engine.evaluate(chosen.doc, elder, month, barred_orgs=world.barred_orgs)
    return render(ev, draft=chosen.row.status != "active", also=[v.row.code for v in others])


def render(
    ev: engine.Evaluation, *, draft: bool = False, also: list[str] | None = None
) -> EvaluationRead:
    """The response, in the request's language (explanations are ``T``s)."""
    return EvaluationRead(
        elder_id=ev.elder_id,
        month=month_text(ev.month),
        policy_code=ev.policy_code,
        policy_version=ev.policy_version,
        policy_hash=ev.policy_hash,
        draft=draft,
        lines=[
            LineRead(
                rule=line.rule,
                kind=line.kind,  # type: ignore[arg-type]
                amount_fen=line.amount_fen,
                explanation=text(line.explanation) or "",
                pay_to=line.pay_to,  # type: ignore[arg-type]
                fund=line.fund,
                days=line.days,
                combination=line.combination,
                parts=[
                    PartRead(org_id=p.org_id, days=p.days, amount_fen=p.amount_fen)
                    for p in line.parts
                ],
                also=list(line.also),
            )
            for line in ev.lines
        ],
        total_fen=ev.total_fen,
        refused=[
            RefusedRead(
                rule=r.rule, code=r.code, reason=text(r.reason) or r.code, steps=list(r.steps)
            )
            for r in ev.refused
        ],
        also_applicable=also or [],
    )


def reevaluate(doc, facts_: ElderFacts, month: date, barred) -> engine.Evaluation:
    return engine.evaluate(doc, facts_, month, barred_orgs=barred)
