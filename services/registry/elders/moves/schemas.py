from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.dates import IsoDate
from shared.regions import validate_region


class MoveCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    residence_region: str = Field(
        description="6/9/12-digit division code where the elder lives from `moved_on`",
        examples=["350203"],
    )
    hukou_region: str | None = Field(
        None,
        description="6-digit division code of the hukou from `moved_on` (omitted: unchanged)",
        examples=["350203"],
    )
    moved_on: IsoDate = Field(
        description="first day at the new place (YYYY-MM-DD); up to 90 days ahead"
    )
    reason: str | None = Field(
        None,
        max_length=256,
        description="why, or the document it rests on; required from org roles for a date "
        "more than 31 days back",
    )

    @field_validator("residence_region")
    @classmethod
    def _residence(cls, v: str) -> str:
        return validate_region(v, lengths=(6, 9, 12))

    @field_validator("hukou_region")
    @classmethod
    def _hukou(cls, v: str | None) -> str | None:
        return validate_region(v) if v is not None else None


class MoveWithdraw(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(
        min_length=1,
        max_length=256,
        description="why the move is withdrawn (recorded by mistake, wrong date …); audited",
    )


class MoveRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    elder_id: uuid.UUID
    kind: Literal["registered", "move"] = Field(
        description="`registered`: as the elder was registered (holds from birth until the "
        "first move); `move`: a recorded move"
    )
    hukou_region: str
    residence_region: str
    valid_from: date = Field(description="the first day this row holds (a move's `moved_on`)")
    reason: str | None
    recorded_by: str
    recorded_at: AwareDatetime
    current: bool = Field(False, description="the row in force today")
