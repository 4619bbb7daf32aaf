from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.subsidy.common import Code, Text


class ApplicationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    elder_id: uuid.UUID
    policy_code: Code
    basis: Code | None = Field(
        None, description="the checklist it is filed under (e.g. dibao_dependent)"
    )
    documents: list[Annotated[Text, Field(max_length=256)]] = Field(
        default=[], max_length=50, description="documents handed in"
    )
    submitted_on: date | None = Field(None, description="default today")


class ApplicationDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["approve", "refuse"]
    reasons: list[Annotated[Text, Field(max_length=512)]] = Field(
        default=[], max_length=20, description="required when refusing"
    )
    note: Text | None = Field(None, max_length=512)

    @model_validator(mode="after")
    def _reasons(self) -> ApplicationDecision:
        if self.decision == "refuse" and not [r for r in self.reasons if r.strip()]:
            raise ValueError("a refusal must state its reasons in writing (书面说明理由)")
        return self


class ApplicationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    elder_id: uuid.UUID
    policy_code: str
    basis: str | None
    documents: list[str]
    missing_documents: list[str] = []
    status: str = Field(description="submitted | approved | refused")
    stage: str = Field(description="community (初审) | street (复审) | district (核准) | done")
    submitted_on: date
    due_on: date = Field(description="deadline of the current stage (working days)")
    overdue: bool = False
    decided_on: date | None
    reasons: list[str]
    history: list[dict[str, Any]]
    created_at: datetime
