from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.telemetry.alerts import lifecycle, rules
from shared.i18n import T

AlertStatus = Literal["open", "acknowledged", "dispatched", "resolved", "false_alarm"]
Severity = Literal["info", "warning", "critical"]
AlertKind = Literal[rules.ALERT_KINDS]  # type: ignore[valid-type]  # one list, in rules.py
AlertAction = Literal[
    "raised", "acknowledged", "dispatched", "escalated", "resolved", "false_alarm"
]

# What the system writes when it closes an alert on its own: a stable code in the row,
# text in the reader's language. (Older rows and the ingest wrote English sentences.)
SYSTEM_NOTES: dict[str, T] = {
    lifecycle.NOTE_DEVICE_BACK: T("设备已恢复上报", "device reporting again"),
    lifecycle.NOTE_MOTION_AGAIN: T("已再次检测到活动", "motion detected again"),
    lifecycle.NOTE_BACK_IN_BED: T("已回到床上", "back in bed"),
    lifecycle.NOTE_DEVICE_RETIRED: T("设备已停用", "device retired"),
    "device reporting again": T("设备已恢复上报", "device reporting again"),
    "motion again": T("已再次检测到活动", "motion detected again"),
    "back in bed": T("已回到床上", "back in bed"),
    "gateway back online": T("网关已重新上线", "gateway back online"),
}


def render_note(note: str | None) -> str | None:
    known = SYSTEM_NOTES.get(note) if note else None
    return str(known) if known is not None else note


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    elder_id: uuid.UUID | None
    gateway_id: str | None
    device_id: str | None
    kind: AlertKind
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
    escalation_level: int = Field(description="escalation steps taken so far")
    escalated_at: datetime | None
    escalation_exhausted_at: datetime | None = Field(
        None, description="the last step of the chain was taken; nobody is re-notified again"
    )
    value: float | None
    details: dict

    @model_validator(mode="after")
    def _system_note(self) -> AlertRead:
        if self.resolved_by == "system":
            self.resolution_note = render_note(self.resolution_note)
        return self


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: str | None = Field(None, max_length=500)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: Literal["resolved", "false_alarm"] = "resolved"
    note: str | None = Field(None, max_length=500)


class EscalationDetail(BaseModel):
    step: int = Field(description="1 for the first step of the chain")
    of: int = Field(description="steps in the chain")
    notify: list[rules.NotifyTarget]
    final: bool = Field(description="the chain ends here")


class AlertLogRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    alert_id: uuid.UUID
    action: AlertAction
    actor: str
    at: datetime
    detail: EscalationDetail | None = Field(None, description="escalation steps: who was told")
