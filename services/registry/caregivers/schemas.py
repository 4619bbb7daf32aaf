from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, field_validator

from services.registry import vocabulary
from shared import clock
from shared.dates import IsoDate
from shared.i18n import T
from shared.pii import Phone

Relation = Literal[
    "spouse",
    "child",
    "child_in_law",
    "grandchild",
    "sibling",
    "relative",
    "friend",
    "neighbour",
    "domestic_helper",
    "other",
]
RelationIn = Annotated[
    Relation,
    *vocabulary.field(
        "relation",
        "The caregiver's relation to the elder, in the words people use (English or Chinese); "
        "stored and returned as the code.",
    ),
]


class FamilyCaregiverCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64)
    relation: RelationIn
    phone: Phone
    lives_with: StrictBool = Field(description="lives with the elder (共同生活)")
    trained_on: IsoDate | None = Field(None, description="date of the org's care training")

    @field_validator("trained_on")
    @classmethod
    def _not_future(cls, v: date | None) -> date | None:
        if v is not None and v > clock.today():
            raise ValueError(T("不能晚于今天", "must not be in the future"))
        return v


class FamilyCaregiverUpdate(BaseModel):
    """A caregiver who moves out, stops caring or is trained later: eligibility follows."""

    model_config = ConfigDict(extra="forbid")

    lives_with: StrictBool | None = None
    active: StrictBool | None = None
    trained_on: IsoDate | None = None


class FamilyCaregiverRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    elder_id: uuid.UUID
    name: str
    relation: Relation
    phone_masked: str
    lives_with: bool
    trained_on: date | None
    active: bool
    created_at: AwareDatetime
