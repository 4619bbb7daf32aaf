from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from services.registry.assessments import scale
from shared import clock
from shared.dates import IsoDate
from shared.i18n import T

LevelName = Literal["intact", "mild", "moderate", "severe", "total"]


class AssessmentCreate(BaseModel):
    """Either the GB/T 42195-2022 item ``scores`` or a ``level`` from a third-party report."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    level: StrictInt | None = Field(
        None, ge=0, le=4, description="0 intact, 1 mild, 2 moderate, 3 severe, 4 total"
    )
    scores: dict[str, StrictInt] | None = Field(
        None, description="every second-level item of GB/T 42195-2022 with its score"
    )
    dementia: StrictBool = Field(False, description="diagnosed dementia (失智): one level worse")
    coma: StrictBool = Field(False, description="coma (昏迷): level 4")
    care_risk_events_30d: StrictInt = Field(
        0, ge=0, le=100, description="falls, choking, wandering off, self-harm in 30 days"
    )
    assessed_on: IsoDate = Field(
        description="the day of the assessment; any past date (records migrated from "
        "spreadsheets keep their history), never in the future"
    )
    assessor: str = Field(min_length=1, max_length=128)
    report_ref: str | None = Field(None, max_length=256)

    @field_validator("assessed_on")
    @classmethod
    def _not_future(cls, v: date) -> date:
        if v > clock.today():
            raise ValueError(T("不能晚于今天", "must not be in the future"))
        return v

    @model_validator(mode="after")
    def _one_source(self) -> AssessmentCreate:
        if (self.level is None) == (self.scores is None):
            raise ValueError(
                T("level 与 scores 须且只能提供其一", "give either level or scores, not both")
            )
        return self


class AssessmentRead(BaseModel):
    id: uuid.UUID
    elder_id: uuid.UUID
    source: Literal["scores", "third_party"]
    scores: dict[str, int] | None
    total: int | None
    base_level: int
    level: int
    level_name: LevelName
    adjustments: list[str]
    dementia: bool
    coma: bool
    care_risk_events_30d: int
    assessed_on: date
    valid_until: date
    assessor: str
    report_ref: str | None
    created_at: AwareDatetime

    @classmethod
    def of(cls, a: Any) -> AssessmentRead:
        return cls.model_validate(
            {
                **{k: getattr(a, k) for k in cls.model_fields if k != "level_name"},
                "level_name": scale.LEVEL_NAMES[a.level],
            }
        )
