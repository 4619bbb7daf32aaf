"""Runs and their decision records."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.evaluations.service import render
from services.subsidy.policies import engine
from services.subsidy.policies import service as policies
from services.subsidy.policies.facts import facts_from_json
from services.subsidy.runs.models import CurrentDecision, Decision, Run
from services.subsidy.runs.schemas import DecisionRead, RunRead
from services.subsidy.runs.worker import note_text
from shared import scoping
from shared.auth import Principal
from shared.errors import NotFound
from shared.i18n import T
from shared.pagination import Page, paginate


async def create(*, session: AsyncSession, principal: Principal, month: date) -> Run:
    run = Run(
        month=month, region=principal.region, status="queued", requested_by=principal.sub, notes=[]
    )
    session.add(run)
    await session.flush()
    return run


def visible(principal: Principal):
    """A region officer sees the runs over their region (or a region containing it)."""
    if principal.region is None:
        return Run.id.is_not(None)
    return Run.region.is_not(None) & scoping.prefixes_nest(Run.region, principal.region)


async def get(*, session: AsyncSession, principal: Principal, run_id: uuid.UUID) -> Run:
    run = await session.scalar(select(Run).where(Run.id == run_id, visible(principal)))
    if run is None:
        raise NotFound(T(f"未找到运行 {run_id}", f"run {run_id} not found"))
    return run


def to_read(run: Run) -> RunRead:
    read = RunRead.model_validate(run)
    read.notes = [note_text(n) for n in run.notes or []]
    read.progress = (
        round(run.elders_done / run.elders_total, 4)
        if run.elders_total
        else (1.0 if run.status == "succeeded" else 0.0)
    )
    return read


async def decisions(
    *,
    session: AsyncSession,
    principal: Principal,
    elder_id: uuid.UUID,
    month: date | None,
    explain: bool,
    cursor: str | None,
    limit: int,
) -> Page[DecisionRead]:
    await scoping.require_elder(session, principal, elder_id)
    stmt = select(Decision).where(Decision.elder_id == elder_id)
    if month is not None:
        stmt = stmt.where(Decision.month == month)
    page = await paginate(
        session, stmt, key=Decision.id, cursor=cursor, limit=limit, descending=True
    )
    rows = page.items
    current = set(
        await session.scalars(
            select(CurrentDecision.decision_id).where(CurrentDecision.elder_id == elder_id)
        )
    )
    out = []
    for d in rows:
        evaluation = None
        if explain and d.policy_hash != "-":
            doc = await policies.document(session, d.policy_hash)
            facts = facts_from_json(d.facts)
            evaluation = render(engine.evaluate(doc, facts, d.month))
        out.append(
            DecisionRead(
                id=d.id,
                run_id=d.run_id,
                elder_id=d.elder_id,
                month=d.month,
                policy_code=d.policy_code,
                policy_version=d.policy_version,
                policy_hash=d.policy_hash,
                facts_hash=d.facts_hash,
                total_fen=d.total_fen,
                verdicts=d.verdicts,
                created_at=d.created_at,
                current=d.id in current,
                evaluation=evaluation,
            )
        )
    return Page[DecisionRead](items=out, next_cursor=page.next_cursor)
