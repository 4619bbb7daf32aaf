"""The SSE feed never skips a step, even when writers commit out of order — against real
PostgreSQL, with real concurrent transactions (the four writers all go through
``alerts/lifecycle.py``; two ingest-style raises stand for any two of them)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from services.telemetry.alerts import lifecycle, stream
from shared.auth import Principal, Role
from tests.integration.telemetry_helpers import make_home
from tests.integration.test_telemetry_api import live_telemetry, read_until  # noqa: F401

ADMIN = Principal(sub="desk", role=Role.admin)


async def raise_in(conn: asyncpg.Connection, home: dict, kind: str) -> uuid.UUID:
    raised = await lifecycle.raise_alert(
        conn,
        kind=kind,
        severity="critical",
        subject=f"{home['elder_id']}:{uuid.uuid4().hex}",
        at=datetime.now(UTC),
        elder_id=uuid.UUID(home["elder_id"]),
        gateway_id=home["gateway"],
    )
    return raised.alert_id


async def seq_of(conn: asyncpg.Connection, alert_id: uuid.UUID) -> int:
    return await conn.fetchval("SELECT seq FROM telemetry.alert_log WHERE alert_id = $1", alert_id)


async def read(telemetry, after: int) -> stream.Read:
    async with telemetry.app.state.sessionmaker() as session:
        return await stream.read_page(session, ADMIN, after)


async def read_all(telemetry, after: int, wanted: set[uuid.UUID], within: float = 20.0):
    """Page through the feed until every wanted alert's step was served (or the deadline)."""
    served: list = []
    deadline = asyncio.get_running_loop().time() + within
    while not wanted <= {r.alert_id for r in served}:
        assert asyncio.get_running_loop().time() < deadline, "steps never served"
        page = await read(telemetry, after)
        served += page.rows
        after = page.after
        if not page.rows:
            await asyncio.sleep(0.01)  # polling the feed, as a client would
    return served, after


@pytest.fixture
async def writers(database_url):
    t1, t2 = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    yield t1, t2
    await t1.close()
    await t2.close()


async def test_a_step_committed_late_is_served_not_skipped(registry, telemetry, writers):
    """T1 takes seq n and stays open, T2 takes n+1 and commits, a reader reads, T1 commits:
    the reader's next read has n. (With ``seq > last`` the reader had passed n for good.)"""
    home = await make_home(registry)
    t1, t2 = writers
    start = await stream.now_position(telemetry.app.state.read_pool)
    tx1, tx2 = t1.transaction(), t2.transaction()
    await tx1.start()
    await tx2.start()
    first = await raise_in(t1, home, "emergency")
    second = await raise_in(t2, home, "fall")
    assert await seq_of(t1, first) < await seq_of(t2, second)
    await tx2.commit()

    before = await read(telemetry, start)
    seen = [r.alert_id for r in before.rows if r.alert_id in (first, second)]
    assert seen == [second]  # committed: served at once, not held behind T1

    await tx1.commit()
    after = await read(telemetry, before.after)
    later = [r.alert_id for r in after.rows if r.alert_id in (first, second)]
    assert later == [first]  # committed later: served next, once
    positions = [r.pos for r in before.rows + after.rows]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert all(p > start for p in positions)


async def test_an_unrelated_open_transaction_holds_nothing_back(registry, telemetry, writers):
    """A transaction left open anywhere with a transaction id (as any write takes) used to
    freeze the feed (rows were served only below the oldest running transaction). Steps
    committed meanwhile are served at once."""
    home = await make_home(registry)
    idle, t2 = writers
    start = await stream.now_position(telemetry.app.state.read_pool)
    forgotten = idle.transaction()
    await forgotten.start()
    await idle.fetchval("SELECT pg_current_xact_id()")
    try:
        async with t2.transaction():
            raised = await raise_in(t2, home, "emergency")
        page = await read(telemetry, start)
        assert raised in [r.alert_id for r in page.rows]
    finally:
        await forgotten.rollback()


async def test_a_new_subscriber_starts_now_without_losing_what_is_in_flight(
    registry, telemetry, writers
):
    """'From now' is gapless too: a step in flight when a client subscribes (T1) is served
    once it commits; one committed before (T2) is history, not news."""
    home = await make_home(registry)
    t1, t2 = writers
    tx1 = t1.transaction()
    await tx1.start()
    first = await raise_in(t1, home, "emergency")
    async with t2.transaction():
        second = await raise_in(t2, home, "fall")
    start = await stream.now_position(telemetry.app.state.read_pool)
    await tx1.commit()
    served = [r.alert_id for r in (await read(telemetry, start)).rows]
    assert first in served and second not in served


async def test_many_writers_committing_in_any_order_are_each_served_once(
    registry, telemetry, database_url
):
    """Eight writers raise alerts in transactions held open for random times, so commits
    come in a different order than inserts, while a reader pages the feed throughout: at
    the end it has served every step exactly once, in increasing positions."""
    home = await make_home(registry)
    start = await stream.now_position(telemetry.app.state.read_pool)
    rng = random.Random(7)
    raised: set[uuid.UUID] = set()

    async def writer(n: int) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for _ in range(15):
                async with conn.transaction():
                    raised.add(await raise_in(conn, home, "emergency"))
                    await asyncio.sleep(rng.random() * 0.02)  # shuffle commit order
        finally:
            await conn.close()

    async def reader() -> list:
        served, after = [], start
        while len(raised) < 8 * 15 or not raised <= {r.alert_id for r in served}:
            page = await read(telemetry, after)
            served += page.rows
            after = page.after
            await asyncio.sleep(0.005)
        return served

    writing = asyncio.gather(*(writer(n) for n in range(8)))
    served = await asyncio.wait_for(asyncio.gather(reader(), writing), 60)
    mine = [r for r in served[0] if r.alert_id in raised]
    assert len(mine) == len(raised) == 8 * 15
    positions = [r.pos for r in served[0]]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    # and the inserts really were committed out of order
    seqs = [r.seq for r in mine]
    assert seqs != sorted(seqs)


async def test_tokens_from_before_positions_still_resume(registry, telemetry, writers):
    """A client holding an ``<xid>-<seq>`` id from the previous version resumes just before
    the first step that came after it; nothing is skipped."""
    home = await make_home(registry)
    t1, _ = writers
    first = await raise_in(t1, home, "emergency")
    second = await raise_in(t1, home, "fall")
    old = await t1.fetchrow(
        "SELECT xid::text, seq FROM telemetry.alert_log WHERE alert_id = $1", first
    )
    token = stream.Token.parse(f"{old['xid']}-{old['seq']}")
    assert token is not None and token.legacy is not None
    after = await stream.resume_position(telemetry.app.state.read_pool, token)
    served, _ = await read_all(telemetry, after, {second})
    ours = [r.alert_id for r in served if r.alert_id in (first, second)]
    assert ours == [second]


async def test_the_live_stream_serves_out_of_order_commits_in_order(
    registry,
    telemetry,
    writers,
    live_telemetry,  # noqa: F811
):
    home = await make_home(registry)
    t1, t2 = writers
    start = await stream.now_position(telemetry.app.state.read_pool)
    headers = {"Authorization": f"Bearer {telemetry.token('admin')}", "Last-Event-ID": str(start)}
    async with (
        httpx.AsyncClient(base_url=live_telemetry, timeout=30) as client,
        client.stream("GET", "/v1/alerts/stream", headers=headers) as r,
    ):
        lines = r.aiter_lines()
        tx1 = t1.transaction()
        await tx1.start()
        first = await raise_in(t1, home, "emergency")
        async with t2.transaction():
            second = await raise_in(t2, home, "fall")
        await tx1.commit()
        waiting = {str(first), str(second)}

        def both_seen(event: dict) -> bool:
            waiting.discard(event["data"]["alert_id"])
            return not waiting

        events = await read_until(lines, both_seen)
    mine = [e for e in events if e["data"]["alert_id"] in (str(first), str(second))]
    # in commit order: the second commit came first
    assert [e["data"]["alert_id"] for e in mine] == [str(second), str(first)]
    ids = [int(e["id"]) for e in mine]
    assert ids == sorted(ids)


async def test_a_commit_takes_its_position_under_the_sequencer_lock(registry, telemetry, writers):
    """While another transaction holds the sequencer's lock (it is committing), a commit
    that wrote log rows waits for it — so positions are handed out in commit order — and
    takes its position once the lock is free."""
    home = await make_home(registry)
    holder, writer = writers
    lock = holder.transaction()
    await lock.start()
    await holder.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('telemetry.alert_log.pos', 0))"
    )
    tx = writer.transaction()
    await tx.start()
    raised = await raise_in(writer, home, "emergency")
    committing = asyncio.create_task(tx.commit())
    deadline = asyncio.get_running_loop().time() + 10
    while not await holder.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted)"
    ):
        assert asyncio.get_running_loop().time() < deadline, "the commit never waited"
        await asyncio.sleep(0.01)
    assert not committing.done()
    await lock.rollback()
    await asyncio.wait_for(committing, 10)
    pos = await writer.fetchval("SELECT pos FROM telemetry.alert_log WHERE alert_id = $1", raised)
    assert pos is not None
