from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.subsidy.common import Month
from services.subsidy.evaluations.schemas import EvaluationRead

RunStatus = Literal["queued", "running", "succeeded", "failed"]


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: Month


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    month: date
    region: str | None = Field(description="the scope it ran for (None: every region)")
    status: RunStatus
    elders_total: int
    elders_done: int
    progress: float = Field(0.0, description="elders_done / elders_total")
    decisions_written: int = Field(description="new decision records (facts or policy changed)")
    decisions_unchanged: int = Field(description="elders whose facts and policy were unchanged")
    postings: int
    reversals: int
    total_fen: int = Field(description="payable for the month across the scope")
    notes: list[str]
    error: str | None
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class DecisionRead(BaseModel):
    id: uuid.UUID
    run_id: uuid.UUID | None
    elder_id: uuid.UUID
    month: date
    policy_code: str
    policy_version: int
    policy_hash: str
    facts_hash: str
    total_fen: int
    verdicts: list[dict[str, Any]]
    created_at: datetime
    current: bool
    evaluation: EvaluationRead | None = Field(
        None, description="rendered again from the frozen facts and the policy version used"
    )
