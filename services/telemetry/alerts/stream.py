"""Server-sent events of the alert log, resumable with ``Last-Event-ID``, never skipping.

The feed's order is ``pos``, a position each log row takes when its transaction commits,
from one sequencer that hands positions out in commit order (a deferred trigger under one
advisory lock, migration 0030). So a reader that sees position n sees every position below
it, and no row can later appear behind a position a client has passed — whatever else is
running: a long subsidy run or a forgotten open transaction elsewhere holds nothing back.
``seq`` could not do that (it is taken at insert, and writers commit out of order), nor
could holding rows back below the oldest running transaction (any transaction anywhere
froze the feed). Writers pay one index update and a brief lock at commit.

The event id is the position as a plain number; clients echo it back as ``Last-Event-ID``
(or ``?after=``). Tokens given out before positions existed still resume: a bare number was
a ``seq``, and old rows kept their ``seq`` as their position; ``"<xid>-<seq>"`` resumes
just before the first row that came after it in its old order (a step may come twice, none
is skipped).

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
_MAX = 2**63
_HORIZON = "SELECT coalesce(max(pos), 0) FROM telemetry.alert_log"
# Just before the first row after an old (xid, seq) token in the order it was given in.
_LEGACY = (
    "SELECT coalesce(min(pos) - 1, (SELECT coalesce(max(pos), 0) FROM telemetry.alert_log)) "
    "FROM telemetry.alert_log WHERE (xid, seq) > ($1::text::xid8, $2)"
)


@dataclass(frozen=True)
class Token:
    """What a client sent back: a position, or an ``(xid, seq)`` pair from before them."""

    pos: int | None = None
    legacy: tuple[int, int] | None = None

    @classmethod
    def parse(cls, token: str) -> Token | None:
        """The position a token names; None when it is not one."""
        if not _TOKEN.fullmatch(token):
            return None
        first, _, second = token.partition("-")
        if not second:
            return cls(pos=int(first)) if int(first) < _MAX else None
        if int(first) >= 2**64 or int(second) >= _MAX:
            return None
        return cls(legacy=(int(first), int(second)))


def token(pos: int) -> str:
    return str(pos)


async def resume_position(pool: asyncpg.Pool, resume: Token) -> int:
    if resume.pos is not None:
        return resume.pos
    assert resume.legacy is not None
    xid, seq = resume.legacy
    return int(await pool.fetchval(_LEGACY, str(xid), seq))


async def now_position(pool: asyncpg.Pool) -> int:
    """Where a new subscriber starts: after the last committed step, so what commits from
    now on — including what was in flight at this moment — is all served."""
    return int(await pool.fetchval(_HORIZON))


@dataclass(frozen=True)
class Read:
    rows: list[AlertLog]
    after: int  # where to read from next


async def read_page(
    session: AsyncSession, principal: Principal, after: int, limit: int = PAGE
) -> Read:
    """The log rows after ``after`` that ``principal`` may see, and the position to read
    from next. When the page is not full, that position moves up to the last committed one
    even past rows out of scope, so a narrow reader does not rescan the whole district's
    steps."""
    # Taken before the rows: every position up to it is visible to the next statement.
    horizon = int((await session.execute(text(_HORIZON))).scalar_one())
    rows = list(await session.scalars(service.stream_statement(principal, after, limit)))
    last = rows[-1].pos if rows else after
    assert last is not None
    if len(rows) < limit:
        last = max(last, horizon)
    return Read(rows, last)


def event(row: AlertLog) -> bytes:
    pos = row.pos
    assert pos is not None  # committed rows all have one
    snapshot = dict(row.snapshot)
    if snapshot.get("resolved_by") == "system":
        snapshot["resolution_note"] = render_note(snapshot.get("resolution_note"))
    data = {
        **AlertLogRead.model_validate(row).model_dump(mode="json"),
        "position": token(pos),
        "alert": snapshot,
    }
    return (
        f"id: {token(pos)}\nevent: alert.{row.action}\n".encode()
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
    after: int,
    expires_at: float | None = None,
) -> AsyncIterator[bytes]:
    """The stream ends when the caller's token expires: the client reconnects with a fresh
    token and its Last-Event-ID, and loses nothing."""
    yield b"retry: 2000\n\n"
    generation = -1
    idle = 0.0
    while expires_at is None or time.time() < expires_at:
        async with sessionmaker() as session:
            read = await read_page(session, principal, after)
        after = read.after
        for row in read.rows:
            yield event(row)
        if read.rows:
            idle = 0.0
            continue
        generation = await broadcaster.wait(generation, POLL_S)
        idle += POLL_S
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield b": keep-alive\n\n"
