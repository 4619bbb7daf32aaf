"""Reads over the dead-letter queue."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.telemetry.deadletters.models import DeadLetter


async def dead_letters(
    *, session: AsyncSession, reason: str | None, limit: int
) -> list[DeadLetter]:
    stmt = select(DeadLetter)
    if reason:
        stmt = stmt.where(DeadLetter.reason == reason)
    return list(await session.scalars(stmt.order_by(DeadLetter.id.desc()).limit(limit)))
