from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from services.subsidy.common import Code, Day, Month
from shared.money import Fen


class VoucherOrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: uuid.UUID
    policy_code: Code
    approved_from: Day
    approved_to: Day | None = None


class VoucherOrgRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    org_id: uuid.UUID
    policy_code: str
    approved_from: date
    approved_to: date | None
    approved_by: str


class VoucherRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    elder_id: uuid.UUID
    policy_code: str
    month: date
    fund: str
    amount_fen: int
    redeemed_fen: int
    lapsed_fen: int
    balance_fen: int = 0
    redeemable_until: date


class RedemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visit_id: uuid.UUID = Field(description="a verified visit from dispatch (one redemption each)")
    price_fen: Fen = Field(description="the organisation's price for the visit")


class RedemptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    visit_id: uuid.UUID
    voucher_id: uuid.UUID | None
    elder_id: uuid.UUID
    org_id: uuid.UUID
    service_day: date
    price_fen: int
    subsidy_fen: int = Field(description="paid from the elder's vouchers")
    copay_fen: int = Field(description="price − subsidy, never below zero: the elder pays it")
    fund: str | None
    created_at: datetime


class LapseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: Month


class LapseRead(BaseModel):
    month: str
    vouchers: int
    lapsed_fen: int
