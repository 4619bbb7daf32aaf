from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.registry.elders.schemas import Zone
from shared.geo import Latitude, Longitude
from shared.ids import validate_credit_code
from shared.pii import normalize_phone
from shared.regions import validate_region

StaffRole = Literal["caregiver", "housekeeper", "doctor", "nurse", "therapist", "social_worker"]


class Licence(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: str = Field(min_length=1, max_length=64, examples=["养老机构备案", "营业执照"])
    number: str = Field(min_length=1, max_length=64)
    valid_until: date | None = None


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=128)
    credit_code: str = Field(
        max_length=32,
        description="统一社会信用代码 (GB 32100-2015)",
        examples=["91350200MA2XXXXXX0"],
    )
    region: str = Field(description="division code where the org is registered (6–12 digits)")
    medical_license: str | None = Field(
        None, max_length=64, description="医疗机构执业许可证 number; needed for medical services"
    )
    medical_license_valid_until: date | None = None
    licences: list[Licence] = Field(default_factory=list, max_length=20)

    @field_validator("credit_code")
    @classmethod
    def _credit(cls, v: str) -> str:
        return validate_credit_code(v)

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        return validate_region(v, lengths=(6, 9, 12))


class OrgRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    credit_code: str
    region: str
    medical_license: str | None
    medical_license_valid_until: date | None
    licences: list[Licence]
    created_at: datetime


class StationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=128)
    lat: Latitude
    lon: Longitude
    zone: Zone
    address: str | None = Field(None, max_length=256)
    region: str | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, v: str | None) -> str | None:
        return validate_region(v, lengths=(6, 9, 12)) if v else None


class StationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    lat: float
    lon: float
    zone: str
    address: str | None
    region: str | None
    created_at: datetime


class Certificate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: str = Field(min_length=1, max_length=64, examples=["养老护理员职业技能等级证书"])
    number: str = Field(min_length=1, max_length=64)
    valid_until: date | None = None


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64)
    role: StaffRole
    phone: str = Field(max_length=20)
    station_id: uuid.UUID | None = None
    certificates: list[Certificate] = Field(default_factory=list, max_length=20)
    insured_until: date | None = Field(None, description="accident insurance cover ends")
    on_duty: bool = False

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        return normalize_phone(v)


class StaffUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_duty: bool | None = None
    station_id: uuid.UUID | None = None
    insured_until: date | None = None
    certificates: list[Certificate] | None = Field(None, max_length=20)
    active: bool | None = None


class StaffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    station_id: uuid.UUID | None
    name: str
    role: str
    phone_masked: str
    certificates: list[Certificate]
    insured_until: date | None
    insured: bool = False
    on_duty: bool
    active: bool
    created_at: datetime
