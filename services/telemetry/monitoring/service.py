"""Per-elder monitoring settings and VISIT mode: what the rules read besides the readings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.telemetry.monitoring.models import ElderSettings, VisitMode
from services.telemetry.monitoring.schemas import MonitoringSettings, VisitModeRead


async def get_settings(*, session: AsyncSession, elder_id: uuid.UUID) -> MonitoringSettings:
    row = await session.scalar(select(ElderSettings).where(ElderSettings.elder_id == elder_id))
    if row is None:
        return MonitoringSettings()
    return MonitoringSettings(thresholds=row.thresholds, schedule=row.schedule)


async def put_settings(
    *, session: AsyncSession, elder_id: uuid.UUID, settings_in: MonitoringSettings
) -> MonitoringSettings:
    thresholds = {m: o.model_dump(exclude_none=True) for m, o in settings_in.thresholds.items()}
    schedule = settings_in.schedule.model_dump(exclude_none=True)
    await session.execute(
        insert(ElderSettings)
        .values(elder_id=elder_id, thresholds=thresholds, schedule=schedule)
        .on_conflict_do_update(
            index_elements=["elder_id"], set_={"thresholds": thresholds, "schedule": schedule}
        )
    )
    return settings_in


async def start_visit(
    *,
    session: AsyncSession,
    elder_id: uuid.UUID,
    staff_id: uuid.UUID | None,
    visit_ref: str | None,
) -> VisitModeRead:
    since = datetime.now(UTC)
    values = {"since": since, "staff_id": staff_id, "visit_ref": visit_ref}
    await session.execute(
        insert(VisitMode)
        .values(elder_id=elder_id, **values)
        .on_conflict_do_update(index_elements=["elder_id"], set_=values)
    )
    return VisitModeRead(elder_id=elder_id, active=True, since=since)


async def end_visit(*, session: AsyncSession, elder_id: uuid.UUID) -> VisitModeRead:
    await session.execute(delete(VisitMode).where(VisitMode.elder_id == elder_id))
    return VisitModeRead(elder_id=elder_id, active=False)
