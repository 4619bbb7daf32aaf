from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.subsidy.common import Code, Month

Kind = Literal["monthly", "one_time", "annual", "per_visit"]


class EvaluationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    elder_id: uuid.UUID
    month: Month
    policy_code: Code | None = Field(
        None,
        description="evaluate under this policy (default: the most specific active policy "
        "covering the elder's hukou region in that month)",
    )


class PartRead(BaseModel):
    org_id: uuid.UUID | None
    days: int
    amount_fen: int


class LineRead(BaseModel):
    rule: str
    kind: Kind
    amount_fen: int
    explanation: str = Field(description="the facts used, the computation and the clause")
    pay_to: Literal["org", "voucher"] = Field(
        description="`org`: paid to the organisation serving the elder; `voucher`: service "
        "vouchers (消费券) the elder spends at approved organisations"
    )
    fund: str
    days: int
    combination: str | None = None
    parts: list[PartRead]
    also: list[str] = Field(default=[], description="rules of the same group paid within it")


class RefusedRead(BaseModel):
    rule: str
    code: str = Field(description="stable reason code (not_eligible, superseded, excluded, …)")
    reason: str = Field(description="the written reason a refusal notice must carry")
    steps: list[str] = Field(
        default=[], description="missing steps: no_bed, no_application, reassessment_overdue, …"
    )


class EvaluationRead(BaseModel):
    elder_id: uuid.UUID
    month: str
    policy_code: str
    policy_version: int
    policy_hash: str
    draft: bool = False
    lines: list[LineRead]
    total_fen: int = Field(
        description="what is payable for that month under `policy_code` (a monthly run pays "
        "every policy in force for the elder: ask for the others by `policy_code`)"
    )
    refused: list[RefusedRead]
    also_applicable: list[str] = Field(
        default=[],
        description="other policies in force for this elder that month (a move mid-month can "
        "add the new place's): each pays its own lines in a run",
    )
