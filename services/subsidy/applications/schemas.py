from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.subsidy.common import Code, Day, Text
from shared.i18n import T


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
    submitted_on: Day | None = Field(None, description="default today")


class ApplicationDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["approve", "refuse"]
    reasons: list[Annotated[Text, Field(max_length=512)]] = Field(
        default=[], max_length=20, description="required when refusing", validate_default=True
    )
    note: Text | None = Field(None, max_length=512)

    @field_validator("reasons")
    @classmethod
    def _reasons(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("decision") == "refuse" and not [r for r in value if r.strip()]:
            raise ValueError(
                T(
                    "不予批准须书面说明理由",
                    "a refusal must state its reasons in writing (书面说明理由)",
                )
            )
        return value


class ApplicationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    elder_id: uuid.UUID
    policy_code: str
    basis: str | None
    documents: list[str]
    missing_documents: list[str] = []
    status: Literal["submitted", "approved", "refused"]
    stage: Literal["community", "street", "district", "done"] = Field(
        description="community 初审, street 复审, district 核准, done"
    )
    submitted_on: date
    due_on: date = Field(description="deadline of the current stage (working days)")
    overdue: bool = False
    decided_on: date | None
    reasons: list[str]
    history: list[dict[str, Any]]
    created_at: datetime
