from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.dates import IsoDateTime

DispatchStatus = Literal[
    "offered", "accepted", "declined", "escalated", "arrived", "resolved", "cancelled"
]


class DispatchCreate(BaseModel):
    """The telemetry hand-off (its outbox relay posts exactly this)."""

    # An inter-service contract: later fields from telemetry must not break the hand-off.
    model_config = ConfigDict(extra="ignore")

    alert_id: uuid.UUID
    elder_id: uuid.UUID
    kind: str = Field(max_length=32)
    raised_at: IsoDateTime


class DispatchCancel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    alert_id: uuid.UUID
    reason: str = Field("false_alarm", max_length=64)
    elder_id: uuid.UUID | None = None
    kind: str | None = Field(None, max_length=32)
    raised_at: IsoDateTime | None = None


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: str | None = Field(None, max_length=500)


class StepRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    action: str
    staff_id: uuid.UUID | None
    actor: str
    detail: dict


class Candidate(BaseModel):
    staff_id: uuid.UUID
    minutes: float
    declined: bool = False


class DispatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    alert_id: uuid.UUID
    elder_id: uuid.UUID
    kind: str
    status: DispatchStatus
    staff_id: uuid.UUID | None
    bed_id: uuid.UUID | None
    org_id: uuid.UUID | None
    visit_id: uuid.UUID | None
    raised_at: datetime
    received_at: datetime
    offered_at: datetime | None
    accepted_at: datetime | None
    declined_at: datetime | None
    escalated_at: datetime | None
    arrived_at: datetime | None
    resolved_at: datetime | None
    cancelled_at: datetime | None
    due_at: datetime | None = Field(description="when the current step's wait ends")
    round: int
    step_index: int
    candidates: list[Candidate]
    steps: list[StepRead] = Field(default_factory=list)
    advice: str | None = Field(None, description="shown to the desk and family, e.g. call 120")
