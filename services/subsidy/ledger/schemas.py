from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from services.subsidy.ledger.models import Account, PostingKind


class BalanceRead(BaseModel):
    account: Account
    fund: str
    elder_id: uuid.UUID | None = None
    org_id: uuid.UUID | None = None
    balance_fen: int


class EntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    posting_id: uuid.UUID
    period: date
    account: Account
    fund: str
    elder_id: uuid.UUID | None
    org_id: uuid.UUID | None
    amount_fen: int
    kind: PostingKind
    entitlement_month: date | None
    rule: str | None
    reverses: uuid.UUID | None
    created_at: datetime


class PeriodRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    month: date
    closed_at: datetime | None
    closed_by: str | None
