"""Reads over the dead-letter queue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.telemetry.deadletters.models import DeadLetter
from shared.pagination import Page, paginate


async def dead_letters(
    *,
    session: AsyncSession,
    reason: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int,
) -> Page[DeadLetter]:
    """Newest first (by id: a sequence in arrival order)."""
    stmt = select(DeadLetter)
    if reason:
        stmt = stmt.where(DeadLetter.reason == reason)
    if since is not None:
        stmt = stmt.where(DeadLetter.received_at >= since)
    if until is not None:
        stmt = stmt.where(DeadLetter.received_at < until)
    return await paginate(
        session, stmt, key=DeadLetter.id, cursor=cursor, limit=limit, descending=True
    )
