"""Reads over the event store (every query bounded by time or limit: the table is huge)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.telemetry.events.models import Event


async def vitals(
    *, session: AsyncSession, elder_id: uuid.UUID, since: datetime, until: datetime, limit: int
) -> list[Event]:
    return list(
        await session.scalars(
            select(Event)
            .where(
                Event.elder_id == elder_id,
                Event.event == "vitals",
                Event.device_ts >= since,
                Event.device_ts <= until,
            )
            .order_by(Event.device_ts.desc())
            .limit(limit)
        )
    )


async def device_events(
    *, session: AsyncSession, device_id: str, event: str | None, since: datetime | None, limit: int
) -> list[Event]:
    stmt = select(Event).where(Event.device_id == device_id)
    if event:
        stmt = stmt.where(Event.event == event)
    if since:
        stmt = stmt.where(Event.received_at >= since)
    return list(await session.scalars(stmt.order_by(Event.received_at.desc()).limit(limit)))
