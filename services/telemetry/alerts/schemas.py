from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AlertStatus = Literal["open", "acknowledged", "dispatched", "resolved", "false_alarm"]
Severity = Literal["info", "warning", "critical"]


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    elder_id: uuid.UUID | None
    gateway_id: str | None
    device_id: str | None
    kind: str = Field(
        description="emergency, fall, heart_rate_high, spo2_low, inactivity, "
        "bed_exit_night, gateway_offline, device_offline, low_battery…"
    )
    severity: Severity
    status: AlertStatus
    occurrences: int
    first_event_at: datetime
    last_event_at: datetime
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    dispatched_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    escalation_level: int
    escalated_at: datetime | None
    value: float | None
    details: dict


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: str | None = Field(None, max_length=500)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: Literal["resolved", "false_alarm"] = "resolved"
    note: str | None = Field(None, max_length=500)


class AlertLogRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    alert_id: uuid.UUID
    action: str
    actor: str
    at: datetime
