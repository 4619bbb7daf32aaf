"""Escalation timers: they live in PostgreSQL (``dispatch.dispatches.due_at``), so a restart
of every dispatch process loses none. The loop fires what is due with ``FOR UPDATE SKIP
LOCKED`` (several processes share the work, none fires a step twice), then sleeps until the
earliest ``due_at`` — at most a second, and woken at once by NOTIFY when a new timer is set."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.dispatch.dispatches import service as dispatches
from services.dispatch.dispatches.service import TIMER_CHANNEL

MAX_SLEEP_S = 1.0


async def tick(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, float]:
    """Fire what is due; (fired, seconds until the next timer, capped)."""
    async with sessionmaker.begin() as session:
        fired = await dispatches.fire_due(session=session)
        nxt = await dispatches.next_due(session=session)
    if nxt is None:
        return fired, MAX_SLEEP_S
    return fired, max(0.0, min(MAX_SLEEP_S, (nxt - datetime.now(UTC)).total_seconds()))


async def run(
    sessionmaker: async_sessionmaker[AsyncSession],
    listener: asyncpg.Connection,
    stop: asyncio.Event,
) -> None:
    wake = asyncio.Event()
    await listener.add_listener(TIMER_CHANNEL, lambda *_: wake.set())
    while not stop.is_set():
        wake.clear()
        fired, delay = await tick(sessionmaker)
        if fired >= 50:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), max(delay, 0.01))
