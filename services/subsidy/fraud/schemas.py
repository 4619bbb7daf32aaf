from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.subsidy.common import Code, Day, Text
from shared.i18n import T
from shared.money import Fen


class FraudFlagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    subject: Literal["elder", "org"]
    # validate_default: the checks below run (and name their field) when a field is left out
    elder_id: uuid.UUID | None = Field(None, validate_default=True)
    org_id: uuid.UUID | None = Field(None, validate_default=True)
    reason: Text = Field(min_length=1, max_length=512)
    found_on: Day
    effective_from: Day | None = Field(None, description="default: found_on")
    repay_fen: Fen = Field(0, description="obtained by fraud, to be repaid (a receivable)")
    fund: Code | None = Field(None, description="the fund it is repaid to", validate_default=True)

    @field_validator("elder_id", "org_id")
    @classmethod
    def _one_subject(cls, value: uuid.UUID | None, info: ValidationInfo) -> uuid.UUID | None:
        subject = info.data.get("subject")  # absent when it was invalid (named on its own)
        if subject is None:
            return value
        mine = info.field_name == f"{subject}_id"
        if mine and value is None:
            raise ValueError(
                T(f"subject 为 {subject} 时必填", f"required when subject is {subject}")
            )
        if not mine and value is not None:
            raise ValueError(
                T(
                    f"subject 为 {subject} 时不应填写（只给 {subject}_id）",
                    f"must be left out when subject is {subject} (give {subject}_id only)",
                )
            )
        return value

    @field_validator("fund")
    @classmethod
    def _fund_of_repayment(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("repay_fen") and not value:
            raise ValueError(
                T("有应还金额时须注明偿还的资金", "a repayment needs the fund it is owed to")
            )
        return value


class FraudFlagRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    subject: Literal["elder", "org"]
    elder_id: uuid.UUID | None
    org_id: uuid.UUID | None
    reason: str
    found_on: date
    effective_from: date
    repay_fen: int
    repaid_fen: int = 0
    fund: str | None
    created_by: str
    created_at: datetime


class RepaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_fen: Fen
    paid_on: Day
