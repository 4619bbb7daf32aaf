from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.subsidy.common import Code

MissingStep = Literal[
    "no_bed",
    "no_application",
    "no_assessment",
    "reassessment_overdue",
    "category_expiring",
    "reassessment_due",
]


class MissedRow(BaseModel):
    elder_id: str
    name: str | None
    policy_code: str
    rule: str
    missing: list[MissingStep]
    reason: str
    due_on: str | None


class Community(BaseModel):
    region: str
    name: str | None
    count: int
    elders: list[MissedRow]


class MissedReport(BaseModel):
    month: str
    region: str | None
    communities: list[Community]
    total: int


class WhatIfCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    draft: dict[str, Any] | None = Field(None, description="a policy document (not stored)")
    policy_code: Code | None = Field(None, description="…or a stored version (e.g. a draft)")
    version: int | None = None
    year: int = Field(ge=2000, le=2100)
    baseline_code: Code | None = Field(None, description="compare with (default: same code)")


class FundCost(BaseModel):
    draft_fen: int
    baseline_fen: int


class MonthCost(BaseModel):
    month: str
    draft_fen: int
    baseline_fen: int
    by_fund: dict[str, FundCost]


class Change(BaseModel):
    elder_id: str
    name: str | None
    delta_fen: int


class WhatIfRead(BaseModel):
    policy_code: str
    policy_version: int
    policy_hash: str
    baseline_code: str
    year: int
    elders: int
    months: list[MonthCost]
    total_draft_fen: int
    total_baseline_fen: int
    budget_fen: int | None
    gainers: int
    losers: int
    top_gainers: list[Change]
    top_losers: list[Change]
