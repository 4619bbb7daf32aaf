"""Server-sent events of the alert log, resumable with ``Last-Event-ID``.

One LISTEN connection per process wakes every open stream when an alert step commits; each
stream then reads the log after its own last id, scoped to its principal. A missed
notification costs at most the poll interval, never an event: the log, not the
notification, is the source.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.telemetry.alerts import service
from services.telemetry.alerts.lifecycle import NOTIFY_CHANNEL
from services.telemetry.alerts.schemas import AlertLogRead
from shared.auth import Principal

POLL_S = 2.0
KEEPALIVE_S = 15.0


class Broadcaster:
    def __init__(self) -> None:
        self._generation = 0
        self._changed = asyncio.Condition()
        self._conn: asyncpg.Connection | None = None

    async def start(self, dsn: str) -> None:
        self._conn = await asyncpg.connect(dsn)
        await self._conn.add_listener(NOTIFY_CHANNEL, self._notified)

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    def _notified(self, *_: object) -> None:
        asyncio.get_running_loop().create_task(self._bump())

    async def _bump(self) -> None:
        async with self._changed:
            self._generation += 1
            self._changed.notify_all()

    async def wait(self, seen: int, within: float) -> int:
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._generation != seen), within
                )
            return self._generation


async def current_seq(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT coalesce(max(seq), 0) FROM telemetry.alert_log")


async def events(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    broadcaster: Broadcaster,
    principal: Principal,
    last_id: int,
    expires_at: float | None = None,
) -> AsyncIterator[bytes]:
    """The stream ends when the caller's token expires: the client reconnects with a fresh
    token and its Last-Event-ID, and loses nothing."""
    yield b"retry: 2000\n\n"
    generation = -1
    idle = 0.0
    while expires_at is None or time.time() < expires_at:
        async with sessionmaker() as session:
            rows = list(await session.scalars(service.stream_statement(principal, last_id)))
        for row in rows:
            last_id = row.seq
            data = {
                **AlertLogRead.model_validate(row).model_dump(mode="json"),
                "alert": row.snapshot,
            }
            yield (
                f"id: {row.seq}\nevent: alert.{row.action}\n".encode()
                + b"data: "
                + orjson.dumps(data)
                + b"\n\n"
            )
        if rows:
            idle = 0.0
            continue
        generation = await broadcaster.wait(generation, POLL_S)
        idle += POLL_S
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield b": keep-alive\n\n"
