from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from shared.dates import IsoDate
from shared.i18n import T

CategoryCode = Literal[
    "extreme_poverty",  # 特困 / 三无
    "subsistence_allowance",  # 低保
    "low_income",  # 低收入
    "entitled_group",  # 重点优抚对象
    "disabled",  # 残疾 (grade 1–4; may receive the disability nursing subsidy)
    "martyr_family",  # 烈属
    "empty_nest",  # 空巢
]


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: CategoryCode
    valid_from: IsoDate = Field(description="start of the period; any past date")
    valid_to: IsoDate | None = None
    grade: StrictInt | None = Field(
        None, ge=1, le=4, description="disability grade (disabled only)"
    )
    receives_nursing_subsidy: StrictBool = Field(
        False, description="receives the disability nursing subsidy (残疾人护理补贴)"
    )
    evidence_ref: str | None = Field(
        None, max_length=256, description="certificate number or document reference"
    )

    @model_validator(mode="after")
    def _consistent(self) -> CategoryCreate:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(
                T("valid_to 不能早于 valid_from", "valid_to must not be before valid_from")
            )
        if self.code != "disabled" and (self.grade is not None or self.receives_nursing_subsidy):
            raise ValueError(
                T(
                    "grade 与 receives_nursing_subsidy 只适用于 disabled（残疾）",
                    "grade and receives_nursing_subsidy apply to code 'disabled' only",
                )
            )
        if self.code == "disabled" and self.grade is None:
            raise ValueError(
                T(
                    "残疾类别须填写残疾等级 grade（1–4）",
                    "a disabled category needs its grade (1–4)",
                )
            )
        return self


class CategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    elder_id: uuid.UUID
    code: CategoryCode
    valid_from: date
    valid_to: date | None
    grade: int | None
    receives_nursing_subsidy: bool
    evidence_ref: str | None
    current: bool = False
    created_at: AwareDatetime
