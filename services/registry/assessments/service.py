"""Assessments: record one (scores or third-party level) and keep the elder's latest level."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.assessments import scale
from services.registry.assessments.models import Assessment
from services.registry.assessments.schemas import AssessmentCreate
from services.registry.elders.models import Elder
from shared.errors import Unprocessable
from shared.i18n import T
from shared.pagination import Page, paginate


async def create(
    *, session: AsyncSession, elder: Elder, assessment_in: AssessmentCreate
) -> Assessment:
    if assessment_in.scores is not None:
        errors = scale.validate_scores(assessment_in.scores)
        if errors:
            raise Unprocessable(T("评分表无效", "the score sheet is not valid"), errors=errors)
    outcome = scale.assess(
        scores=assessment_in.scores,
        level=assessment_in.level,
        dementia=assessment_in.dementia,
        coma=assessment_in.coma,
        care_risk_events_30d=assessment_in.care_risk_events_30d,
    )
    assessment = Assessment(
        elder_id=elder.id,
        source="scores" if assessment_in.scores is not None else "third_party",
        scores=assessment_in.scores,
        total=outcome.total,
        base_level=outcome.base_level,
        level=outcome.level,
        adjustments=outcome.adjustments,
        dementia=assessment_in.dementia,
        coma=assessment_in.coma,
        care_risk_events_30d=assessment_in.care_risk_events_30d,
        assessed_on=assessment_in.assessed_on,
        valid_until=scale.valid_until(assessment_in.assessed_on),
        assessor=assessment_in.assessor,
        report_ref=assessment_in.report_ref,
    )
    session.add(assessment)
    await session.flush()
    await refresh_latest(session=session, elder=elder)
    return assessment


async def in_force(
    *, session: AsyncSession, elder_id: uuid.UUID, day: date | None = None
) -> Assessment | None:
    """The assessment that counts on ``day`` (the latest of all when ``day`` is None).
    Latest wins: by assessment date, then by when it was recorded."""
    stmt = select(Assessment).where(Assessment.elder_id == elder_id)
    if day is not None:
        stmt = stmt.where(Assessment.assessed_on <= day)
    return await session.scalar(
        stmt.order_by(
            Assessment.assessed_on.desc(), Assessment.created_at.desc(), Assessment.id.desc()
        ).limit(1)
    )


async def refresh_latest(*, session: AsyncSession, elder: Elder) -> None:
    latest = await in_force(session=session, elder_id=elder.id)
    elder.current_level = latest.level if latest else None
    elder.reassessment_due_on = latest.valid_until if latest else None
    await session.flush()


async def history(
    *, session: AsyncSession, elder: Elder, cursor: str | None, limit: int
) -> Page[Assessment]:
    """Latest first: by assessment date, then by when it was recorded (ids are time-ordered)."""
    stmt = select(Assessment).where(Assessment.elder_id == elder.id)
    key = (Assessment.assessed_on, Assessment.id)
    return await paginate(session, stmt, key=key, cursor=cursor, limit=limit, descending=True)
