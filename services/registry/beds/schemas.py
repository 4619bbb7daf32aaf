from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.dates import IsoDate
from shared.money import Fen

BedStatus = Literal["applied", "active", "suspended", "terminated"]
ModificationKind = Literal["aging_adaptation", "smart"]


class BedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    elder_id: uuid.UUID
    org_id: uuid.UUID
    station_id: uuid.UUID
    started_on: IsoDate | None = Field(
        None,
        description="service start; the bed is active from this date (default today). "
        "Eligibility is checked on this date. Civil-affairs roles may record any past date "
        "(a district migrating its records); an org more than 31 days back only with "
        "`backdate_reason`. At most 90 days ahead.",
    )
    status: Literal["applied", "active"] = Field(
        "active", description="`applied` records an application to be activated later"
    )
    backdate_reason: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="why `started_on` is more than 31 days back (kept on the bed, audited)",
    )


class BedTransition(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    on: IsoDate | None = Field(
        None,
        description="effective date (default today); an org activating more than 31 days "
        "back gives `reason`",
    )
    reason: str | None = Field(None, min_length=1, max_length=256)


class BedRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    elder_id: uuid.UUID
    org_id: uuid.UUID
    station_id: uuid.UUID
    status: BedStatus
    policy_code: str
    applied_on: date
    started_on: date | None
    suspended_on: date | None
    terminated_on: date | None
    termination_reason: str | None
    backdate_reason: str | None = None
    created_at: AwareDatetime


class BedEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    from_status: BedStatus | None
    to_status: BedStatus
    effective_on: date
    reason: str | None
    actor: str
    created_at: AwareDatetime


class ModificationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: ModificationKind = Field(
        description="适老化改造 (aging adaptation) or 智能化改造 (smart devices)"
    )
    item: str = Field(min_length=1, max_length=128, examples=["卫生间扶手", "紧急呼叫按钮"])
    cost_fen: Fen
    done_on: IsoDate
    warranty_until: IsoDate | None = Field(
        None, description="end of the vendor's warranty; at least one year (default: one year)"
    )
    vendor: str | None = Field(None, max_length=128)


class ModificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    bed_id: uuid.UUID
    kind: ModificationKind
    item: str
    cost_fen: int
    done_on: date
    warranty_until: date
    under_warranty: bool = False
    vendor: str | None
    created_at: AwareDatetime
