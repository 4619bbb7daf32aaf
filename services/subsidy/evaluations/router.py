from __future__ import annotations

from fastapi import APIRouter

from services.subsidy.common import parse_month
from services.subsidy.evaluations import service
from services.subsidy.evaluations.schemas import EvaluationCreate, EvaluationRead
from shared.auth import Principal, ScopedReader
from shared.errors import problem_doc
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/evaluations", tags=["evaluations"])


@router.post(
    "",
    response_model=EvaluationRead,
    summary="Who gets how much for a month, and why (nothing is stored or paid)",
    responses={422: problem_doc("no policy covers the elder that month, or invalid input")},
)
async def create_evaluation(
    body: EvaluationCreate, session: SessionDep, principal: Principal = ScopedReader
) -> EvaluationRead:
    return await service.evaluate(
        session=session,
        principal=principal,
        elder_id=body.elder_id,
        month=parse_month(body.month),
        policy_code=body.policy_code,
    )
