from __future__ import annotations

from fastapi import APIRouter

from services.subsidy.rewards import service
from services.subsidy.rewards.schemas import RewardEvaluation, RewardQuery, RewardRead
from shared.auth import Principal, Role, require_roles
from shared.errors import problem_doc
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/rewards", tags=["rewards"])
Admin = require_roles(Role.admin)


@router.post(
    "/evaluations",
    response_model=RewardEvaluation,
    summary="Which reward tier an organisation reaches (operating beds, satisfaction)",
)
async def evaluate_reward(
    body: RewardQuery, session: SessionDep, principal: Principal = Admin
) -> RewardEvaluation:
    return await service.evaluate(session=session, query=body)


@router.post(
    "",
    status_code=201,
    response_model=RewardRead,
    summary="Grant the one-time reward (refused while its amount is blank, or once granted)",
    responses={
        409: problem_doc("already granted"),
        422: problem_doc(
            "`reward-not-reached`: `reasons` lists every unmet condition as `{code, tier, "
            "message}` (codes: `too_few_operating_beds`, `satisfaction_too_low`), "
            "`policy_code` the policy applied; `policy-incomplete`: the tier's amount is still "
            "blank (`errors` names `policy_code`)"
        ),
    },
)
async def grant_reward(
    body: RewardQuery, session: SessionDep, principal: Principal = Admin
) -> RewardRead:
    return RewardRead.model_validate(
        await service.grant(session=session, principal=principal, query=body)
    )
