from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
)

from services.registry import vocabulary
from services.registry.elders.schemas import Lat, Lon, Zone
from shared.dates import IsoDate
from shared.i18n import T
from shared.ids import credit_code_region, validate_credit_code
from shared.pii import Phone
from shared.regions import validate_region

StaffRole = Literal["caregiver", "housekeeper", "doctor", "nurse", "therapist", "social_worker"]
StaffRoleIn = Annotated[
    StaffRole,
    *vocabulary.field(
        "staff_role",
        "What the staff member does, in the words people use (English or Chinese); stored and "
        "returned as the code.",
    ),
]


class Licence(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: str = Field(min_length=1, max_length=64, examples=["养老机构备案", "营业执照"])
    number: str = Field(min_length=1, max_length=64)
    valid_until: IsoDate | None = None


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=128)
    credit_code: str = Field(
        max_length=32,
        description="统一社会信用代码 (GB 32100-2015)",
        examples=["91350200MA2XXXXXX0"],
    )
    region: str | None = Field(
        None,
        description="division code where the org is registered (6–12 digits). Default: the "
        "registration authority's code in the credit code (GB 32100: characters 3–8); an "
        "unknown derived code is refused, naming `region`, so give it explicitly then.",
        validate_default=True,
    )
    medical_license: str | None = Field(
        None, max_length=64, description="医疗机构执业许可证 number; needed for medical services"
    )
    medical_license_valid_until: IsoDate | None = None
    licences: list[Licence] = Field(default_factory=list, max_length=20)

    @field_validator("credit_code")
    @classmethod
    def _credit(cls, v: str) -> str:
        return validate_credit_code(v)

    @field_validator("region")
    @classmethod
    def _region(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            return validate_region(v, lengths=(6, 9, 12))
        code = info.data.get("credit_code")
        if code is None:
            return None  # the credit code's own error says what is wrong
        derived = credit_code_region(code)
        try:
            return validate_region(derived)
        except ValueError:
            raise ValueError(
                T(
                    f"无法从统一社会信用代码推出登记地：第 3–8 位 {derived} "
                    "不是已知的行政区划代码，请填写 region",
                    f"cannot derive the region from the credit code: characters 3–8 ({derived}) "
                    "are not a known division code; give region",
                )
            ) from None


class OrgRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    credit_code: str
    region: str
    medical_license: str | None
    medical_license_valid_until: date | None
    licences: list[Licence]
    created_at: AwareDatetime


class StationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=128)
    lat: Lat
    lon: Lon
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
    zone: Zone
    address: str | None
    region: str | None
    created_at: AwareDatetime


class Certificate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: str = Field(min_length=1, max_length=64, examples=["养老护理员职业技能等级证书"])
    number: str | None = Field(None, min_length=1, max_length=64)
    valid_until: IsoDate | None = None


CertificateName = Annotated[
    str, Field(min_length=1, max_length=64, examples=["养老护理员证"], description="just the kind")
]
Certificates = Annotated[
    list[Certificate | CertificateName],
    Field(
        max_length=20,
        description='certificates as objects, or just their names (`["养老护理员证"]`)',
    ),
]


def _as_certificates(items: list[Certificate | str] | None) -> list[Certificate] | None:
    if items is None:
        return None
    return [Certificate(kind=c.strip()) if isinstance(c, str) else c for c in items]


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64)
    role: StaffRoleIn
    phone: Phone
    station_id: uuid.UUID | None = None
    certificates: Certificates = Field(default_factory=list)
    insured_until: IsoDate | None = Field(None, description="accident insurance cover ends")
    on_duty: StrictBool = False

    @field_validator("certificates", mode="after")
    @classmethod
    def _certificates(cls, v: list[Certificate | str]) -> list[Certificate]:
        return _as_certificates(v) or []


class StaffUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_duty: StrictBool | None = None
    station_id: uuid.UUID | None = None
    insured_until: IsoDate | None = None
    certificates: Certificates | None = None
    active: StrictBool | None = None

    @field_validator("certificates", mode="after")
    @classmethod
    def _certificates(cls, v: list[Certificate | str] | None) -> list[Certificate] | None:
        return _as_certificates(v)


class StaffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    station_id: uuid.UUID | None
    name: str
    role: StaffRole
    phone_masked: str
    certificates: list[Certificate]
    insured_until: date | None
    insured: bool = False
    on_duty: bool
    active: bool
    created_at: AwareDatetime
