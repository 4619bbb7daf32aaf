from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.subsidy.common import Code, Day


class RewardQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: uuid.UUID
    policy_code: Code = "xm-tongan-org-reward"
    as_of: Day
    satisfaction_pct: int = Field(
        ge=0, le=100, description="服务对象满意率 — an input until satisfaction surveys exist"
    )


RewardReasonCode = Literal["too_few_operating_beds", "satisfaction_too_low", "amount_not_set"]


class RewardReason(BaseModel):
    """One unmet condition of a reward tier. The same objects are the ``reasons`` of the 422
    a refused grant answers (``ProblemDetail.reasons``: ``code`` and ``message``, plus
    ``tier``)."""

    code: RewardReasonCode = Field(description="stable: branch on this")
    tier: str = Field(description="the reward tier (the policy's reward id) it is about")
    message: str = Field(description="for people: zh-CN, or English on `Accept-Language: en`")


class RewardEvaluation(BaseModel):
    org_id: uuid.UUID
    policy_code: str
    policy_version: int
    as_of: date
    active_beds: int = Field(description="beds active on as_of")
    operating_beds: int = Field(
        description="of those, beds with a verified visit in the 30 days before as_of "
        "(签订服务合同并实际开展服务、实时上传服务数据)"
    )
    satisfaction_pct: int
    tier: str | None
    amount_fen: int | None = Field(description="None while the policy's amount is blank (xx)")
    reasons: list[RewardReason] = Field(
        description="every condition not met, per tier (a refusal notice states them all)"
    )


class RewardRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    policy_code: str
    tier: str
    as_of: date
    operating_beds: int
    satisfaction_pct: int
    amount_fen: int
    fund: str
    posting_id: uuid.UUID | None
    created_at: datetime
