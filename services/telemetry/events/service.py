"""Reads over the event store (every query bounded by time and limit: the table is huge).

Lists are newest first and resume at a ``cursor.Position`` (the composite sort key of the
next row, inclusive), so a client walking pages never sees a reading twice or misses one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.telemetry.events import fhir
from services.telemetry.events.cursor import Position
from services.telemetry.events.models import Event

VITALS_KEY = (Event.device_ts, Event.device_id, Event.msg_id, Event.received_at)
DEVICE_KEY = (Event.received_at, Event.msg_id)


def vitals_position(row: Event, skip: int = 0) -> Position:
    return Position("vitals", row.device_ts, row.device_id, row.msg_id, row.received_at, skip)


def device_position(row: Event) -> Position:
    return Position("device", row.received_at, row.device_id, row.msg_id)


async def vitals(
    *,
    session: AsyncSession,
    elder_id: uuid.UUID,
    since: datetime,
    until: datetime,
    at: Position | None,
    limit: int,
    inclusive: bool = True,
) -> list[Event]:
    """Up to ``limit`` vitals readings of the elder in ``[since, until]``, newest first,
    from ``at`` on (``at`` itself included unless ``inclusive`` is false)."""
    stmt = select(Event).where(
        Event.elder_id == elder_id,
        Event.event == "vitals",
        Event.device_ts >= since,
        Event.device_ts <= until,
    )
    if at is not None:
        key = tuple_(*VITALS_KEY)
        bound = tuple_(at.ts, at.device_id, at.msg_id, at.received_at)
        # the plain bound on the leading column lets the planner narrow the index range
        stmt = stmt.where(Event.device_ts <= at.ts, key <= bound if inclusive else key < bound)
    stmt = stmt.order_by(*(c.desc() for c in VITALS_KEY)).limit(limit)
    return list(await session.scalars(stmt))


async def device_events(
    *,
    session: AsyncSession,
    device_id: str,
    event: str | None,
    since: datetime | None,
    until: datetime | None,
    at: Position | None,
    limit: int,
) -> list[Event]:
    """Up to ``limit`` of the device's events by arrival time, newest first, from ``at`` on."""
    stmt = select(Event).where(Event.device_id == device_id)
    if event:
        stmt = stmt.where(Event.event == event)
    if since:
        stmt = stmt.where(Event.received_at >= since)
    if until:
        stmt = stmt.where(Event.received_at <= until)
    if at is not None:
        stmt = stmt.where(
            Event.received_at <= at.ts,  # prunes partitions; the row comparison alone does not
            tuple_(*DEVICE_KEY) <= tuple_(at.ts, at.msg_id),
        )
    stmt = stmt.order_by(*(c.desc() for c in DEVICE_KEY)).limit(limit)
    return list(await session.scalars(stmt))


# Readings looked at for one FHIR page at most: a window full of readings that export to
# nothing (or cannot be exported) ends the page early, with a cursor, instead of scanning on.
FHIR_SCAN_BUDGET = 5000
AFTER_THIS = 15  # a Position.skip beyond any reading's Observations: resume after it


@dataclass
class FhirPage:
    observations: list[dict]
    skipped: int
    next: Position | None


async def vitals_fhir(
    *,
    session: AsyncSession,
    elder_id: uuid.UUID,
    since: datetime,
    until: datetime,
    at: Position | None,
    limit: int,
) -> FhirPage:
    """One page of the elder's vitals as FHIR Observations: ``limit`` counts Observations,
    and a reading may straddle two pages (the cursor says how many of it were sent)."""
    out: list[dict] = []
    skipped = scanned = 0
    position, inclusive = at, True
    first_skip = at.skip if at else 0
    after_key: tuple[str, str] | None = None
    while True:
        batch = await vitals(
            session=session,
            elder_id=elder_id,
            since=since,
            until=until,
            at=position,
            limit=limit + 1,
            inclusive=inclusive,
        )
        page = fhir.export(
            batch, elder_id, limit=limit - len(out), first_skip=first_skip, after_key=after_key
        )
        out += page.observations
        skipped += page.skipped
        if page.resume is not None:
            i, j = page.resume
            return FhirPage(out, skipped, vitals_position(batch[i], j))
        if len(batch) < limit + 1:
            return FhirPage(out, skipped, None)
        scanned += len(batch)
        if scanned >= FHIR_SCAN_BUDGET:
            return FhirPage(out, skipped, vitals_position(batch[-1], AFTER_THIS))
        position, inclusive, first_skip = vitals_position(batch[-1]), False, 0
        after_key = page.last_key
