from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from services.subsidy.common import Day, Quarter, Text


class Method(StrEnum):
    phone = "phone"
    home_visit = "home_visit"


class Outcome(StrEnum):
    confirmed = "confirmed"  # services and subsidy as recorded
    discrepancy = "discrepancy"  # something did not match: a case for the fraud review
    unreachable = "unreachable"  # no callback made: does not count toward the rate


class SampleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quarter: Quarter
    region: str | None = Field(
        None,
        pattern=r"^\d{2,12}$",
        description="division-code prefix; default: the caller's region (all, when unscoped)",
    )


class CommunityRead(BaseModel):
    community: str = Field(description="the elders' residence division code")
    population: int = Field(description="elders paid a subsidy in the quarter")
    required: int = Field(description="callbacks the rate asks for")
    sampled: int
    done: int = Field(description="callbacks made (confirmed or discrepancy)")
    meets_rule: bool


class SampleRead(BaseModel):
    id: uuid.UUID
    quarter: str
    region: str
    rate_pct: int
    seed: str = Field(description="with the quarter's paid lines, draws the same sample again")
    population: int
    sampled: int
    done: int
    discrepancies: int
    unreachable: int
    meets_rule: bool = Field(description="every community has its required callbacks made")
    reference: str
    communities: list[CommunityRead]
    drawn_by: str
    drawn_at: datetime


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    elder_id: uuid.UUID
    community: str
    rank: int
    method: Method | None
    outcome: Outcome | None
    done_on: date | None
    note: str | None
    recorded_by: str | None
    recorded_at: datetime | None


class RecordCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    elder_id: uuid.UUID
    method: Method
    outcome: Outcome
    done_on: Day
    note: Text = Field("", max_length=2000, description="the written record (书面回访记录)")
