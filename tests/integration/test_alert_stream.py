"""The SSE feed never skips a step, even when writers commit out of order — against real
PostgreSQL, with real concurrent transactions (the four writers all go through
``alerts/lifecycle.py``; two ingest-style raises stand for any two of them)."""

from __future__ import annotations

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


async def read(telemetry, after: stream.Position) -> stream.Read:
    async with telemetry.app.state.sessionmaker() as session:
        return await stream.read_page(session, ADMIN, after)


@pytest.fixture
async def writers(database_url):
    t1, t2 = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    yield t1, t2
    await t1.close()
    await t2.close()


@pytest.mark.parametrize("t2_began_first", [False, True], ids=["t1-xid-first", "t2-xid-first"])
async def test_a_step_committed_late_is_served_not_skipped(
    registry, telemetry, writers, t2_began_first
):
    """T1 takes seq n and stays open, T2 takes n+1 and commits, a reader reads, T1 commits:
    the reader's next read has n. (With ``seq > last`` the reader had passed n for good.)"""
    home = await make_home(registry)
    t1, t2 = writers
    start = await stream.now_position(telemetry.app.state.read_pool)
    tx1, tx2 = t1.transaction(), t2.transaction()
    await tx1.start()
    await tx2.start()
    if t2_began_first:  # T2's transaction id is the older one, its log row the newer
        await t2.fetchval("SELECT pg_current_xact_id()")
    first = await raise_in(t1, home, "emergency")
    second = await raise_in(t2, home, "fall")
    assert await seq_of(t1, first) < await seq_of(t2, second)
    await tx2.commit()

    before = await read(telemetry, start)
    seen = [r.alert_id for r in before.rows if r.alert_id in (first, second)]
    assert first not in seen  # not committed: nobody can see it yet
    if t2_began_first:
        assert seen == [second]  # everything older than it has settled
    else:
        assert seen == []  # held back behind T1, which is older and still open
        assert before.held  # and the reader knows to look again soon

    await tx1.commit()
    after = await read(telemetry, before.after)
    later = [r.alert_id for r in after.rows if r.alert_id in (first, second)]
    assert first in later
    assert sorted(seen + later) == sorted([first, second])  # each exactly once
    positions = [stream.Position(r.xid, r.seq) for r in before.rows + after.rows]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert all(p > start for p in positions)


async def test_a_new_subscriber_starts_now_without_losing_what_is_in_flight(
    registry, telemetry, writers
):
    """'From now' is gapless too: a step in flight when a client subscribes (T1, seq n) is
    served once it commits, although a later one (T2, n+1) had already committed."""
    home = await make_home(registry)
    t1, t2 = writers
    tx1 = t1.transaction()
    await tx1.start()
    first = await raise_in(t1, home, "emergency")
    async with t2.transaction():
        second = await raise_in(t2, home, "fall")
    start = await stream.now_position(telemetry.app.state.read_pool)
    await tx1.commit()
    got = await read(telemetry, start)
    served = [r.alert_id for r in got.rows]
    assert first in served and second in served


async def test_the_live_stream_serves_out_of_order_commits_in_order(
    registry,
    telemetry,
    writers,
    live_telemetry,  # noqa: F811
):
    home = await make_home(registry)
    t1, t2 = writers
    start = await stream.now_position(telemetry.app.state.read_pool)
    headers = {"Authorization": f"Bearer {telemetry.token('admin')}", "Last-Event-ID": start.token}
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
    assert [e["data"]["alert_id"] for e in mine] == [str(first), str(second)]  # (xid, seq)
    ids = [tuple(map(int, e["id"].split("-"))) for e in mine]
    assert ids == sorted(ids)
