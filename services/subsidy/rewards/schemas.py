from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from services.subsidy.common import Code


class RewardQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: uuid.UUID
    policy_code: Code = "xm-tongan-org-reward"
    as_of: date
    satisfaction_pct: int = Field(
        ge=0, le=100, description="服务对象满意率 — an input until satisfaction surveys exist"
    )


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
    reasons: list[str]


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
