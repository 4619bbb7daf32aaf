from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.dispatch.plans.generator import parse_rule
from shared.dates import IsoDate, WallClock
from shared.i18n import T


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    bed_id: uuid.UUID
    staff_id: uuid.UUID | None = Field(None, description="the usual caregiver (continuity of care)")
    rrule: str = Field(
        max_length=256,
        examples=["FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,WE,FR"],
        description="RFC 5545 recurrence rule, at most daily",
    )
    working_days_only: bool = Field(
        False, description="skip holidays and weekends (调休 respected)"
    )
    start_time: WallClock
    duration_minutes: int = Field(ge=5, le=720)
    items: list[str] = Field(min_length=1, max_length=30)
    valid_from: IsoDate | None = None
    valid_to: IsoDate | None = None

    @field_validator("rrule")
    @classmethod
    def _rule(cls, v: str) -> str:
        try:
            parse_rule(v, datetime(2026, 1, 1))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                str(T(f"无法使用的重复规则（RRULE）：{exc}", f"not a usable RRULE: {exc}"))
            ) from exc
        return v

    @model_validator(mode="after")
    def _dates(self) -> PlanCreate:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError(
                str(T("截止日期不能早于起始日期", "valid_to must not be before valid_from"))
            )
        return self


class PlanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    bed_id: uuid.UUID
    elder_id: uuid.UUID
    org_id: uuid.UUID
    staff_id: uuid.UUID | None
    rrule: str
    working_days_only: bool
    start_time: WallClock
    duration_minutes: int
    items: list[str]
    valid_from: date
    valid_to: date | None
    generated_until: date | None
    active: bool
    generated: int = 0
