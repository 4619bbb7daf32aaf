from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel


class Excluded(BaseModel):
    visit_id: uuid.UUID
    service_day: date | None
    minutes: int | None
    flags: list[str]


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
    reasons: list[str]
    verified_visits: int
    excluded: list[Excluded]


class OrgCompliance(BaseModel):
    org_id: uuid.UUID
    month: str
    beds: int
    compliant: int
    short: list[BedCompliance]
