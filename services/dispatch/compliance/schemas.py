from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, Field


class Excluded(BaseModel):
    visit_id: uuid.UUID
    service_day: date | None
    minutes: int | None
    flags: list[str]


class Reason(BaseModel):
    code: str = Field(description="monthly_hours, daily_minimum, daily_living_kinds")
    message: str


class BedCompliance(BaseModel):
    bed_id: uuid.UUID
    elder_id: uuid.UUID
    org_id: uuid.UUID
    month: str
    period_start: date | None
    period_end: date | None
    days_in_period: int
    hours_delivered: float
    required_hours: float
    days_with_minimum: int
    days_short: list[date]
    monthly_hours_met: bool
    daily_minimum_met: bool
    daily_living_kinds: list[str]
    daily_living_kinds_met: bool
    compliant: bool
    reasons: list[Reason]
    verified_visits: int
    excluded: list[Excluded]


class OrgCompliance(BaseModel):
    """Counts over every bed of the org in the month; ``items`` is one page (bed-id order)
    of the beds short of the rule, the next after ``?cursor=`` ``next_cursor``."""

    org_id: uuid.UUID
    month: str
    beds: int
    compliant: int
    items: list[BedCompliance]
    next_cursor: str | None = None
