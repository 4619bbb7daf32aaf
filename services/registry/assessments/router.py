from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.registry.assessments import service
from services.registry.assessments.schemas import AssessmentCreate, AssessmentRead
from services.registry.elders import service as elders
from shared.auth import Principal, Role, ScopedReader, require_roles
from shared.pagination import Cursor, Limit, Page
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/elders/{elder_id}/assessments", tags=["assessments"])

# The service org benefits from the level, so it does not record it: the third-party
# assessor's report is entered by the civil-affairs side (GB/T 42195, 000 篇一).
Writer = require_roles(Role.admin, Role.street, Role.community)
Reader = ScopedReader


@router.post(
    "",
    status_code=201,
    response_model=AssessmentRead,
    summary="Record a GB/T 42195-2022 assessment (scores) or a third-party level",
)
async def create_assessment(
    elder_id: uuid.UUID,
    assessment_in: AssessmentCreate,
    session: SessionDep,
    principal: Principal = Writer,
) -> AssessmentRead:
    elder = await elders.get(session=session, principal=principal, elder_id=elder_id)
    assessment = await service.create(session=session, elder=elder, assessment_in=assessment_in)
    return AssessmentRead.of(assessment)


@router.get("", response_model=Page[AssessmentRead], summary="Assessment history, latest first")
async def list_assessments(
    elder_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AssessmentRead]:
    elder = await elders.get(session=session, principal=principal, elder_id=elder_id)
    page = await service.history(session=session, elder=elder, cursor=cursor, limit=limit)
    return Page[AssessmentRead](
        items=[AssessmentRead.of(a) for a in page.items], next_cursor=page.next_cursor
    )
