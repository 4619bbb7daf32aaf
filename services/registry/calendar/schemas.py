from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, StrictBool


class CalendarDayUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    is_working: StrictBool
    name: str = Field("", max_length=120, examples=["春节", "调休上班"])


class CalendarDayRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: date
    is_working: bool
    name: str
    source: str = Field(description="`holidays` (seeded from the package) or `admin`")


class DeadlineRead(BaseModel):
    start: date
    working_days: int
    deadline: date
