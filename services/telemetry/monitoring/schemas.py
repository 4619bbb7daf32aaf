from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.telemetry.alerts import rules
from shared.i18n import T

Clock = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class ThresholdOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    warn_low: float | None = None
    warn_high: float | None = None
    crit_low: float | None = None
    crit_high: float | None = None
    repeat: int | None = Field(None, ge=1, le=20)
    window_s: int | None = Field(None, ge=60, le=24 * 3600)


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day_start: Clock | None = None
    day_end: Clock | None = None
    night_start: Clock | None = None
    night_end: Clock | None = None
    inactivity_hours: float | None = Field(None, gt=0, le=24)
    bed_exit_minutes: int | None = Field(None, ge=1, le=240)


class MonitoringSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thresholds: dict[str, ThresholdOverride] = Field(
        default_factory=dict,
        description="by vital: heart_rate, resp_rate, spo2, systolic, diastolic, temp_c",
    )
    schedule: Schedule = Field(default_factory=Schedule, description="Asia/Shanghai clock")

    @model_validator(mode="after")
    def _consistent(self) -> MonitoringSettings:
        for metric, override in self.thresholds.items():
            if metric not in rules.VITALS:
                raise ValueError(
                    str(
                        T(
                            f"未知的生命体征 {metric!r}（可用：{', '.join(sorted(rules.VITALS))}）",
                            f"unknown vital {metric!r} (known: {', '.join(sorted(rules.VITALS))})",
                        )
                    )
                )
            merged = rules.thresholds_for({metric: override.model_dump(exclude_none=True)})
            t = merged[metric]
            if not t.crit_low <= t.warn_low < t.warn_high <= t.crit_high:
                raise ValueError(
                    str(
                        T(
                            f"{metric}：须满足 crit_low ≤ warn_low < warn_high ≤ crit_high",
                            f"{metric}: need crit_low <= warn_low < warn_high <= crit_high",
                        )
                    )
                )
        return self


class VisitModeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool
    staff_id: uuid.UUID | None = None
    visit_ref: str | None = Field(None, max_length=64, description="dispatch's visit id")


class VisitModeRead(BaseModel):
    elder_id: uuid.UUID
    active: bool
    since: datetime | None = None
