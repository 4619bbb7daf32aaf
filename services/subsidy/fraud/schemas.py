from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.subsidy.common import Code, Text
from shared.money import Fen


class FraudFlagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    subject: Literal["elder", "org"]
    elder_id: uuid.UUID | None = None
    org_id: uuid.UUID | None = None
    reason: Text = Field(min_length=1, max_length=512)
    found_on: date
    effective_from: date | None = Field(None, description="default: found_on")
    repay_fen: Fen = Field(0, description="obtained by fraud, to be repaid (a receivable)")
    fund: Code | None = Field(None, description="the fund it is repaid to")

    @model_validator(mode="after")
    def _one_subject(self) -> FraudFlagCreate:
        if (self.subject == "elder") != (self.elder_id is not None) or (self.subject == "org") != (
            self.org_id is not None
        ):
            raise ValueError("give elder_id for an elder, org_id for an org (not both)")
        if self.repay_fen and not self.fund:
            raise ValueError("a repayment needs the fund it is owed to")
        return self


class FraudFlagRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    subject: str
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
    paid_on: date
