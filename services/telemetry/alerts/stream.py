"""Server-sent events of the alert log, resumable with ``Last-Event-ID``, never skipping.

The feed's order is ``(xid, seq)``: the writing transaction's id, then the row's sequence.
A reader serves only rows whose xid is below ``pg_snapshot_xmin`` of its snapshot — the
oldest transaction still running — because every transaction below it has finished, so its
rows are all visible now and no row can later appear at a position the reader has passed.
A row committed late (its transaction began before others that committed first) is held
back until it and everything older has settled, then served in its place; a ``seq`` alone
could not do that (sequence numbers are taken at insert, not at commit). Writers pay
nothing: ``xid`` is a column default. The cost is latency, not loss: while a long writing
transaction runs anywhere in the cluster, newer rows wait for it (so telemetry's own
writers — the monitor, housekeeping — keep their transactions short, and a database
serving this feed should set ``idle_in_transaction_session_timeout``: a forgotten open
transaction would hold the feed back until it ends).

The event id is the position as a plain token, ``"<xid>-<seq>"``; clients echo it back as
``Last-Event-ID`` (or ``?after=``). A bare number is a position from before the xid column
existed (those rows carry xid 0 and keep their seq order).

One LISTEN connection per process wakes every open stream when an alert step commits; each
stream then reads after its own position, scoped to its principal. A missed notification
costs at most the poll interval, never an event: the log, not the notification, is the
source.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.telemetry.alerts import service
from services.telemetry.alerts.lifecycle import NOTIFY_CHANNEL
from services.telemetry.alerts.models import AlertLog
from services.telemetry.alerts.schemas import AlertLogRead, render_note
from shared.auth import Principal

POLL_S = 2.0
KEEPALIVE_S = 15.0
PAGE = 200
TOKEN_PATTERN = r"^[0-9]{1,20}(-[0-9]{1,19})?$"
_TOKEN = re.compile(TOKEN_PATTERN)
# While committed rows wait behind an older transaction, look again soon (that transaction
# may never NOTIFY), backing off so a long one does not turn every stream into a busy loop.
HELD_POLL_S = 0.02
HELD_POLL_MAX_S = 1.0
# The horizon, and whether committed rows already wait above it (their writers' NOTIFY has
# come and gone; what holds them back may be a transaction that never notifies).
_HORIZON = text(
    "SELECT h.x, EXISTS (SELECT 1 FROM telemetry.alert_log WHERE xid >= h.x) "
    "FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x) h"
)


@dataclass(frozen=True, order=True)
class Position:
    """A place in the feed: everything at or before it has been served."""

    xid: int
    seq: int

    @property
    def token(self) -> str:
        return f"{self.xid}-{self.seq}"

    @classmethod
    def parse(cls, token: str) -> Position | None:
        """The position a token names; None when it is not one."""
        if not _TOKEN.fullmatch(token):
            return None
        xid, _, seq = token.partition("-")
        position = cls(int(xid), int(seq)) if seq else cls(0, int(xid))
        if position.xid >= 2**64 or position.seq >= 2**63:
            return None
        return position


async def now_position(pool: asyncpg.Pool) -> Position:
    """Where a new subscriber starts: just below the oldest running transaction, so what
    commits from now on — including what was in flight at this moment — is all served."""
    return Position(int(await pool.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())")), 0)


@dataclass(frozen=True)
class Read:
    rows: list[AlertLog]
    after: Position  # where to read from next
    held: bool  # committed rows wait above the horizon: read again soon


async def read_page(
    session: AsyncSession, principal: Principal, after: Position, limit: int = PAGE
) -> Read:
    """The settled log rows after ``after`` that ``principal`` may see, and the position to
    read from next. When the page is not full, that position moves up to the horizon even
    past rows out of scope, so a narrow reader does not rescan the whole district's steps."""
    # Taken before the rows: a later snapshot's horizon is never lower, so every settled
    # row below this one is in the page that follows.
    horizon_xid, held = (await session.execute(_HORIZON)).one()
    rows = list(await session.scalars(service.stream_statement(principal, after, limit)))
    last = Position(rows[-1].xid, rows[-1].seq) if rows else after
    if len(rows) < limit:
        last = max(last, Position(int(horizon_xid), 0))
    return Read(rows, last, bool(held))


def event(row: AlertLog) -> bytes:
    snapshot = dict(row.snapshot)
    if snapshot.get("resolved_by") == "system":
        snapshot["resolution_note"] = render_note(snapshot.get("resolution_note"))
    data = {
        **AlertLogRead.model_validate(row).model_dump(mode="json"),
        "position": Position(row.xid, row.seq).token,
        "alert": snapshot,
    }
    return (
        f"id: {Position(row.xid, row.seq).token}\nevent: alert.{row.action}\n".encode()
        + b"data: "
        + orjson.dumps(data)
        + b"\n\n"
    )


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


async def events(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    broadcaster: Broadcaster,
    principal: Principal,
    after: Position,
    expires_at: float | None = None,
) -> AsyncIterator[bytes]:
    """The stream ends when the caller's token expires: the client reconnects with a fresh
    token and its Last-Event-ID, and loses nothing."""
    yield b"retry: 2000\n\n"
    generation = -1
    idle = 0.0
    held_delay = HELD_POLL_S
    while expires_at is None or time.time() < expires_at:
        async with sessionmaker() as session:
            read = await read_page(session, principal, after)
        after = read.after
        for row in read.rows:
            yield event(row)
        if read.rows:
            idle, held_delay = 0.0, HELD_POLL_S
            continue
        if read.held:  # wake on the next step, or look again after the delay
            generation = await broadcaster.wait(generation, held_delay)
            idle += held_delay
            held_delay = min(held_delay * 2, HELD_POLL_MAX_S)
        else:
            held_delay = HELD_POLL_S
            generation = await broadcaster.wait(generation, POLL_S)
            idle += POLL_S
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield b": keep-alive\n\n"
