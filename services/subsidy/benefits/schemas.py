from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from services.subsidy.common import Day, Text
from shared.money import Fen


class BenefitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    elder_id: uuid.UUID
    code: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,63}$",
        examples=["home_adaptation_subsidy"],
        description="what it was (a rule's `counts_prior` names these codes)",
    )
    amount_fen: Fen
    received_on: Day
    reference: Text | None = Field(None, max_length=256)


class BenefitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    elder_id: uuid.UUID
    code: str
    amount_fen: int
    received_on: date
    reference: str | None
    recorded_by: str
    created_at: datetime
