from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class CoverageCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    station_id: uuid.UUID
    elder_id: uuid.UUID


class CoverageResult(BaseModel):
    within_radius: bool
    travel_minutes: float
    limit_minutes: float
    method: str = Field(
        description="estimate, osrm, valhalla (or <engine>+estimate after a fallback)"
    )
    distance_m: float
    zone: str


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: uuid.UUID | None = None
    region: str | None = Field(None, pattern=r"^\d{2,12}$")
    include_within: bool = Field(False, description="list every bed, not only those outside")


class BedCoverage(BaseModel):
    bed_id: uuid.UUID
    elder_id: uuid.UUID
    org_id: uuid.UUID
    station_id: uuid.UUID | None
    nearest_station_id: uuid.UUID | None
    travel_minutes: float | None
    limit_minutes: float
    within_radius: bool


class BulkReport(BaseModel):
    """Counts over every bed in scope; ``items`` is one page of them (bed-id order), the next
    after ``?cursor=`` ``next_cursor``. ``/v1/coverage/bulk.csv`` has every bed at once."""

    beds: int
    outside: int
    method: str
    items: list[BedCoverage]
    next_cursor: str | None = None
