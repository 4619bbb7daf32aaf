"""Per-elder monitoring settings: vital-sign threshold overrides and the home's schedule
(what "daytime" and "night" mean for inactivity and bed-exit rules)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.registry.elders import service as elders
from services.telemetry.alerts import rules
from services.telemetry.alerts.models import ElderSettings
from shared.auth import Principal, Role, StaffReader, require_roles
from shared.uow import SessionDep

router = APIRouter(tags=["monitoring settings"])

Reader = StaffReader
Editor = require_roles(Role.admin, Role.community, Role.org_admin)

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
                raise ValueError(f"unknown vital {metric!r}")
            merged = rules.thresholds_for({metric: override.model_dump(exclude_none=True)})
            t = merged[metric]
            if not t.crit_low <= t.warn_low < t.warn_high <= t.crit_high:
                raise ValueError(f"{metric}: need crit_low <= warn_low < warn_high <= crit_high")
        return self


@router.get(
    "/v1/elders/{elder_id}/monitoring",
    response_model=MonitoringSettings,
    summary="The elder's threshold overrides and schedule (empty = defaults)",
)
async def get_settings(
    elder_id: uuid.UUID, session: SessionDep, principal: Principal = Reader
) -> MonitoringSettings:
    await elders.get(session=session, principal=principal, elder_id=elder_id)
    row = await session.scalar(select(ElderSettings).where(ElderSettings.elder_id == elder_id))
    if row is None:
        return MonitoringSettings()
    return MonitoringSettings(thresholds=row.thresholds, schedule=row.schedule)


@router.put(
    "/v1/elders/{elder_id}/monitoring",
    response_model=MonitoringSettings,
    summary="Replace the elder's overrides (e.g. a COPD patient's SpO2 baseline)",
)
async def put_settings(
    elder_id: uuid.UUID,
    body: MonitoringSettings,
    session: SessionDep,
    principal: Principal = Editor,
) -> MonitoringSettings:
    await elders.get(session=session, principal=principal, elder_id=elder_id)
    values = {
        "elder_id": elder_id,
        "thresholds": {m: o.model_dump(exclude_none=True) for m, o in body.thresholds.items()},
        "schedule": body.schedule.model_dump(exclude_none=True),
    }
    await session.execute(
        insert(ElderSettings)
        .values(values)
        .on_conflict_do_update(
            index_elements=["elder_id"],
            set_={"thresholds": values["thresholds"], "schedule": values["schedule"]},
        )
    )
    return body
