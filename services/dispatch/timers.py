"""Escalation timers: they live in PostgreSQL (``dispatch.dispatches.due_at``), so a restart
of every dispatch process loses none. The loop fires what is due with ``FOR UPDATE SKIP
LOCKED`` (several processes share the work, none fires a step twice), then sleeps until the
earliest ``due_at`` — at most a second. A NOTIFY carries a new timer's due time and wakes the
loop only when that is earlier than its planned wake-up (a hand-off's 60-second wait costs
the loop nothing until it is due)."""

from __future__ import annotations

import asyncio
import contextlib
import time
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
    # when the loop means to look next (epoch seconds); while it is looking, any new timer
    # wakes it again, as that timer may have come after the look
    planned = [float("inf")]

    def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        wake_if_sooner(wake, planned[0], payload)

    await listener.add_listener(TIMER_CHANNEL, on_notify)
    while not stop.is_set():
        wake.clear()
        fired, delay = await tick(sessionmaker)
        if fired >= 50:
            continue
        planned[0] = time.time() + max(delay, 0.01)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), max(delay, 0.01))
        planned[0] = float("inf")


def wake_if_sooner(wake: asyncio.Event, planned: float, payload: str) -> None:
    """A new timer wakes the loop if it is due before the loop would look anyway (an
    unreadable payload wakes it too: better early than late)."""
    try:
        due = float(payload)
    except ValueError:
        wake.set()
        return
    if due < planned:
        wake.set()
