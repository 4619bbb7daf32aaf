"""Retention in housekeeping: what is pruned, what never is, in chunks — real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.telemetry.alerts import stream
from services.telemetry.housekeeping import Retention, housekeeping
from shared.auth import Principal, Role
from shared.config import Settings
from tests.integration.telemetry_helpers import make_home

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
RETENTION = Retention(
    events_days=3650, dead_letter_days=30, outbox_days=7, alert_log_days=400, device_state_days=30
)


@pytest.fixture
async def conn(database_url):
    c = await asyncpg.connect(database_url)
    yield c
    await c.close()


def test_retention_figures_come_from_settings():
    s = Settings(
        dead_letter_retention_days=3,
        outbox_retention_days=4,
        alert_log_retention_days=5,
        device_state_retention_days=6,
        telemetry_retention_days=7,
    )
    assert Retention.from_settings(s) == Retention(7, 3, 4, 5, 6)
    with pytest.raises(ValueError):
        Settings(alert_log_retention_days=0)


async def add_alert(conn, *, raised: datetime, resolved: datetime | None, steps: list) -> uuid.UUID:
    """An alert with its log rows at the given times, each step in its own transaction."""
    alert_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO telemetry.alerts (id, kind, severity, status, dedup_key, occurrences, "
        "first_event_at, last_event_at, raised_at, resolved_at, escalation_level, details) "
        "VALUES ($1, 'emergency', 'critical', $2, $3, 1, $4, $4, $4, $5, 0, '{}')",
        alert_id,
        "resolved" if resolved else "open",
        f"retention-{alert_id}:emergency",
        raised,
        resolved,
    )
    for action, at in steps:
        await conn.execute(
            "INSERT INTO telemetry.alert_log (alert_id, action, actor, at, snapshot) "
            "VALUES ($1, $2, 'system', $3, '{}')",
            alert_id,
            action,
            at,
        )
    return alert_id


async def test_housekeeping_prunes_by_the_rules_and_keeps_what_is_needed(registry, telemetry, conn):
    tag = uuid.uuid4().hex[:8]
    await conn.executemany(
        "INSERT INTO telemetry.dead_letters (received_at, topic, payload, reason, detail) "
        "VALUES ($1, $2, '', 'malformed_json', '')",
        [(NOW - d * DAY, f"retention/{tag}/{d}") for d in (40, 31, 29, 1)],
    )
    await conn.executemany(
        "INSERT INTO telemetry.outbox (target, method, path, body, idempotency_key, created_at, "
        "attempts, next_attempt_at, delivered_at) VALUES ('dispatch', 'POST', '/x', '{}', $1, "
        "$2, 1, $2, $3)",
        [
            (f"{tag}-old", NOW - 40 * DAY, NOW - 10 * DAY),
            (f"{tag}-new", NOW - 40 * DAY, NOW - 1 * DAY),
            (f"{tag}-pending", NOW - 40 * DAY, None),  # a promise: never pruned
        ],
    )
    long_ago = NOW - 500 * DAY
    closed_long_ago = await add_alert(
        conn,
        raised=long_ago,
        resolved=long_ago + DAY,
        steps=[("raised", long_ago), ("resolved", long_ago + DAY)],
    )
    still_open = await add_alert(conn, raised=long_ago, resolved=None, steps=[("raised", long_ago)])
    closed_lately = await add_alert(
        conn,
        raised=long_ago,
        resolved=NOW - 10 * DAY,
        steps=[("raised", long_ago), ("resolved", NOW - 10 * DAY)],
    )
    first_pruned = await conn.fetchrow(
        "SELECT pos FROM telemetry.alert_log WHERE alert_id = $1 ORDER BY pos LIMIT 1",
        closed_long_ago,
    )

    home = await make_home(registry)
    retired_long_ago, retired_lately, active = (home["devices"][p] for p in ("btn", "pir", "vit"))
    for device in (retired_long_ago, retired_lately):
        assert (await registry.post(f"/v1/devices/{device}/retire")).status_code == 200
    await conn.execute(
        "UPDATE registry.devices SET retired_at = $2 WHERE device_id = $1",
        retired_long_ago,
        NOW - 40 * DAY,
    )
    unregistered = f"ghost-{tag}"
    await conn.executemany(
        "INSERT INTO telemetry.device_state (device_id, gateway_id, last_seen_at, clock_skewed) "
        "VALUES ($1, $2, $3, false)",
        [
            (retired_long_ago, home["gateway"], NOW - 41 * DAY),
            (retired_lately, home["gateway"], NOW - 41 * DAY),
            (active, home["gateway"], NOW - 400 * DAY),  # long silent, still active: kept
            (unregistered, home["gateway"], NOW - 40 * DAY),
        ],
    )

    result = await housekeeping(conn, NOW, RETENTION, chunk=2)  # chunks of two: loops

    topics = await conn.fetch(
        "SELECT topic FROM telemetry.dead_letters WHERE topic LIKE $1", f"retention/{tag}/%"
    )
    assert sorted(r["topic"] for r in topics) == [f"retention/{tag}/1", f"retention/{tag}/29"]
    keys = await conn.fetch(
        "SELECT idempotency_key FROM telemetry.outbox WHERE idempotency_key LIKE $1", f"{tag}-%"
    )
    assert sorted(r["idempotency_key"] for r in keys) == [f"{tag}-new", f"{tag}-pending"]
    steps = {
        alert_id: await conn.fetchval(
            "SELECT count(*) FROM telemetry.alert_log WHERE alert_id = $1", alert_id
        )
        for alert_id in (closed_long_ago, still_open, closed_lately)
    }
    # only whole histories of alerts closed before the window; an active one never
    assert steps == {closed_long_ago: 0, still_open: 1, closed_lately: 2}
    assert await conn.fetchval("SELECT count(*) FROM telemetry.alerts WHERE id = $1", still_open)
    states = await conn.fetch(
        "SELECT device_id FROM telemetry.device_state WHERE device_id = ANY($1::text[])",
        [retired_long_ago, retired_lately, active, unregistered],
    )
    assert sorted(r["device_id"] for r in states) == sorted([retired_lately, active])
    assert result["dead_letters_pruned"] >= 2 and result["alert_log_pruned"] >= 2
    assert result["outbox_pruned"] >= 1 and result["device_state_pruned"] >= 2

    # a client resuming from before the pruned steps still gets what follows, in order
    async with telemetry.app.state.sessionmaker() as session:
        read = await stream.read_page(
            session,
            Principal(sub="desk", role=Role.admin),
            first_pruned["pos"] - 1,
        )
    ours = [r.alert_id for r in read.rows if r.alert_id in steps]
    assert ours == [still_open, closed_lately, closed_lately]
