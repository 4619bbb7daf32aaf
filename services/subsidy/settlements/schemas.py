from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from services.subsidy.common import Quarter


class SettlementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quarter: Quarter
    org_id: uuid.UUID | None = Field(None, description="one organisation (default: every one owed)")


class SettlementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    quarter: str
    period_start: date
    period_end: date
    amount_fen: int
    by_fund: dict[str, int]
    posting_id: uuid.UUID | None
    created_at: datetime


class SettlementRun(BaseModel):
    quarter: str
    settlements: list[SettlementRead]
    vouchers_lapsed: int
    lapsed_fen: int
