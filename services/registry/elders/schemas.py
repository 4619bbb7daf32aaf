from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    field_validator,
    model_validator,
)

from shared.dates import IsoDate
from shared.geo import Latitude, Longitude
from shared.i18n import T
from shared.pii import Phone, parse_id_number
from shared.regions import validate_region

# Strict: a number, never a numeric string (the document says `number`).
Lat = Annotated[Latitude, Strict()]
Lon = Annotated[Longitude, Strict()]

Zone = Literal["urban", "rural"]
LivingArrangement = Literal["alone", "couple", "with_family", "with_disabled_dependant"]


class ElderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id_number: str = Field(
        max_length=32,
        description="18-character resident ID (GB 11643)",
        examples=["350212194501011236"],
    )
    name: str = Field(min_length=1, max_length=64)
    phone: Phone | None = None
    hukou_region: str = Field(
        description="6-digit county-level division code of the hukou", examples=["350212"]
    )
    residence_region: str | None = Field(
        None, description="6/9/12-digit division code where the elder lives (default: hukou)"
    )
    address: str = Field(min_length=1, max_length=256)
    lat: Lat | None = None
    lon: Lon | None = None
    zone: Zone
    living_arrangement: LivingArrangement
    lives_at_home: StrictBool = Field(True, description="false when living in an institution")

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, v: str) -> str:
        return parse_id_number(v).number

    @field_validator("hukou_region")
    @classmethod
    def _hukou(cls, v: str) -> str:
        return validate_region(v)

    @field_validator("residence_region")
    @classmethod
    def _residence(cls, v: str | None) -> str | None:
        return validate_region(v, lengths=(6, 9, 12)) if v else None

    @model_validator(mode="after")
    def _coordinates_together(self) -> ElderCreate:
        if (self.lat is None) != (self.lon is None):
            raise ValueError(T("lat 与 lon 须同时提供", "lat and lon must be given together"))
        return self


class ElderUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=64)
    phone: Phone | None = None
    residence_region: str | None = None
    address: str | None = Field(None, min_length=1, max_length=256)
    lat: Lat | None = None
    lon: Lon | None = None
    zone: Zone | None = None
    living_arrangement: LivingArrangement | None = None
    lives_at_home: StrictBool | None = None
    deceased_on: IsoDate | None = None

    @field_validator("residence_region")
    @classmethod
    def _residence(cls, v: str | None) -> str | None:
        return validate_region(v, lengths=(6, 9, 12)) if v else None


class ElderRead(BaseModel):
    id: uuid.UUID
    id_number_masked: str
    id_number: str | None = Field(None, description="clear value, only with ?include=pii")
    name: str
    birth_date: date
    gender: Literal["male", "female"]
    age: int
    phone_masked: str | None
    phone: str | None = Field(None, description="clear value, only with ?include=pii")
    hukou_region: str
    residence_region: str
    address: str
    lat: float | None
    lon: float | None
    zone: Zone
    living_arrangement: LivingArrangement
    lives_at_home: bool
    deceased_on: date | None
    current_level: int | None = Field(None, description="latest assessment level, 0..4")
    reassessment_due_on: date | None
    created_at: AwareDatetime


class ReasonRead(BaseModel):
    code: str = Field(
        description="stable identifier of the failed condition", examples=["lives_alone"]
    )
    message: str = Field(description="the reason as a refusal notice states it (zh-CN / en)")


class EligibilityRead(BaseModel):
    elder_id: uuid.UUID
    eligible: bool
    policy_code: str
    reasons: list[ReasonRead]
