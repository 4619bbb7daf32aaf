from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.dates import IsoDateTime
from shared.geo import Latitude, Longitude
from shared.i18n import T

VisitStatus = Literal["planned", "checked_in", "checked_out", "cancelled"]


class VisitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    bed_id: uuid.UUID
    staff_id: uuid.UUID | None = Field(
        None, description="the caregiver; a caregiver's own id by default"
    )
    planned_start: IsoDateTime
    planned_end: IsoDateTime
    items: list[str] = Field(
        min_length=1, max_length=30, description="catalogue codes or usual names (助餐, 助洁…)"
    )
    client_ref: str | None = Field(
        None,
        max_length=64,
        description="the handset's own id for an ad-hoc visit: a retry days later finds it again",
    )

    @model_validator(mode="after")
    def _order(self) -> VisitCreate:
        if self.planned_end <= self.planned_start:
            raise ValueError(
                str(T("结束时间须晚于开始时间", "planned_end must be after planned_start"))
            )
        if (self.planned_end - self.planned_start).total_seconds() > 12 * 3600:
            raise ValueError(str(T("一次上门服务最长 12 小时", "a visit lasts at most 12 hours")))
        return self


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    lat: Latitude
    lon: Longitude
    at: IsoDateTime = Field(description="the handset's time of the check-in")
    alternate_reason: str | None = Field(
        None, max_length=200, description="why the check-in is not at the home (e.g. 陪同就医)"
    )


class CheckOut(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    lat: Latitude
    lon: Longitude
    at: IsoDateTime = Field(description="the handset's time of the check-out")
    items_done: list[str] = Field(default_factory=list, max_length=30)
    note: str | None = Field(None, max_length=1000)


class CheckResult(BaseModel):
    visit_id: uuid.UUID
    status: VisitStatus
    distance_m: float | None
    flags: list[str]
    late: bool = False


class FlagRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    status: Literal["open", "cleared", "confirmed"]
    detail: dict
    raised_at: datetime
    reviewed_at: datetime | None
    reviewed_by: str | None
    reason_code: str | None
    review_note: str | None


class FlagReview(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["clear", "confirm"]
    reason_code: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,31}$",
        examples=["gps_drift", "elder_escorted", "confirmed_fraud", "handset_clock"],
    )
    note: str = Field(min_length=1, max_length=500)


class Evv(BaseModel):
    """The six elements of electronic visit verification."""

    service_type: list[str]
    recipient: uuid.UUID
    date: date | None
    location: dict | None
    provider: uuid.UUID | None
    begin: datetime | None
    end: datetime | None


class VisitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    bed_id: uuid.UUID
    elder_id: uuid.UUID
    org_id: uuid.UUID
    staff_id: uuid.UUID | None
    plan_id: uuid.UUID | None
    dispatch_id: uuid.UUID | None
    kind: str
    status: VisitStatus
    planned_start: datetime
    planned_end: datetime
    items: list[str]
    route_seq: int | None
    eta: datetime | None
    check_in_at: datetime | None
    check_in_lat: float | None
    check_in_lon: float | None
    check_in_distance_m: float | None
    alternate_reason: str | None
    check_out_at: datetime | None
    check_out_lat: float | None
    check_out_lon: float | None
    check_out_distance_m: float | None
    items_done: list[str]
    note: str | None
    late: bool
    service_day: date | None
    minutes: int | None
    flags: list[FlagRead] = Field(default_factory=list)
    evv: Evv | None = None
