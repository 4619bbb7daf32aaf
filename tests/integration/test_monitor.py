"""Time-based rules over device state, with a controlled clock, against real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from services.telemetry.alerts import rules
from services.telemetry.housekeeping import Retention, housekeeping
from services.telemetry.ingest.pipeline import Message, Pipeline
from services.telemetry.monitor import scan
from tests.integration.telemetry_helpers import make_home, msg

# 10:00 in Shanghai (daytime) and 02:00 (night), as UTC instants
DAY = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
NIGHT = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)


@pytest.fixture
async def conn(database_url):
    c = await asyncpg.connect(database_url)
    yield c
    await c.close()


def only_events(days: int) -> Retention:
    """Partitions only: these tests move the clock years ahead, and the shared database's
    other rows are not theirs to prune."""
    never = 100_000
    return Retention(days, never, never, never, never)


async def feed(conn, at: datetime, *messages) -> None:
    async with conn.transaction():
        await Pipeline().process(conn, [Message(t, p, at) for t, p in messages])


async def run_scan(conn, now: datetime) -> list[str]:
    async with conn.transaction():
        return await scan(conn, now)


def mine(done: list[str], home: dict) -> list[str]:
    keys = [home["elder_id"], home["gateway"], *home["devices"].values()]
    return sorted(
        d.split(":")[0] + (":closed" if d.startswith("closed") else "")
        for d in done
        if any(k in d for k in keys)
    )


async def test_inactivity_counts_daytime_hours_only_and_respects_visit_mode(
    registry, telemetry, conn
):
    home = await make_home(registry)
    t0 = DAY - timedelta(hours=5)  # 05:00 in Shanghai, before the day starts at 07:00
    await feed(conn, t0, msg(home, "pir", "motion", ts=t0, room="kitchen", state="active"))
    await feed(conn, DAY, msg(home, "pir", "heartbeat", ts=DAY, battery=90))
    # five hours by the clock, but only three of them daytime (07:00–10:00): not yet
    assert "inactivity" not in mine(await run_scan(conn, DAY), home)
    eleven = DAY + timedelta(hours=1)  # four daytime hours
    # a caregiver is in the home: nothing is raised
    r = await telemetry.client.put(
        f"/v1/elders/{home['elder_id']}/visit-mode",
        json={"active": True, "visit_ref": "v-1"},
        headers=telemetry.auth("service"),
    )
    assert r.status_code == 200 and r.json()["active"] is True
    assert "inactivity" not in mine(await run_scan(conn, eleven), home)
    await telemetry.client.put(
        f"/v1/elders/{home['elder_id']}/visit-mode",
        json={"active": False},
        headers=telemetry.auth("service"),
    )
    assert "inactivity" in mine(await run_scan(conn, eleven), home)
    assert "inactivity" not in mine(await run_scan(conn, eleven), home)  # de-duplicated
    # motion again closes it
    back = eleven + timedelta(minutes=1)
    await feed(conn, back, msg(home, "pir", "motion", ts=back, room="hall", state="active"))
    assert "closed:closed" in mine(await run_scan(conn, back + timedelta(minutes=1)), home)


async def test_a_night_of_sleep_is_not_inactivity(registry, conn):
    """Motion at 21:30, checks through the night and at 07:00 and 10:59: nothing. 11:00 the
    next morning is four daytime hours (07:00–11:00) after the last motion."""
    home = await make_home(registry)
    evening = datetime(2026, 11, 25, 13, 30, tzinfo=UTC)  # 21:30 in Shanghai
    await feed(conn, evening, msg(home, "pir", "motion", ts=evening, room="bed", state="active"))
    for hours in (1, 5, 9.5, 13.49):  # 22:30, 02:30, 07:00, 10:59
        now = evening + timedelta(hours=hours)
        assert "inactivity" not in mine(await run_scan(conn, now), home), now
    assert "inactivity" in mine(await run_scan(conn, evening + timedelta(hours=13.5)), home)


async def test_night_bed_exit_without_return(registry, conn):
    home = await make_home(registry)
    out = NIGHT - timedelta(minutes=30)
    await feed(conn, out, msg(home, "bed", "bed", ts=out, state="out"))
    assert "bed_exit_night" in mine(await run_scan(conn, NIGHT), home)
    back = NIGHT + timedelta(minutes=1)
    await feed(conn, back, msg(home, "bed", "bed", ts=back, state="in"))
    assert "closed:closed" in mine(await run_scan(conn, back), home)


async def test_missed_heartbeats_mean_offline(registry, conn):
    home = await make_home(registry)
    t0 = datetime.now(UTC)
    await feed(conn, t0, msg(home, "btn", "heartbeat", ts=t0, battery=80))
    assert "device_offline" not in mine(await run_scan(conn, t0 + timedelta(seconds=150)), home)
    assert "device_offline" in mine(await run_scan(conn, t0 + timedelta(seconds=181)), home)
    later = t0 + timedelta(seconds=200)
    await feed(conn, later, msg(home, "btn", "heartbeat", ts=later, battery=80))
    assert "closed:closed" in mine(await run_scan(conn, later), home)


async def test_unacknowledged_critical_alert_escalates(registry, telemetry, conn):
    home = await make_home(registry)
    t0 = datetime.now(UTC)
    await feed(conn, t0, msg(home, "btn", "emergency", ts=t0, button="main"))
    alert_id = await conn.fetchval(
        "SELECT id FROM telemetry.alerts WHERE gateway_id = $1", home["gateway"]
    )
    raised_at = await conn.fetchval(
        "SELECT raised_at FROM telemetry.alerts WHERE id = $1", alert_id
    )
    done = await run_scan(conn, raised_at + timedelta(seconds=30))
    assert not [d for d in done if str(alert_id) in d]
    done = await run_scan(conn, raised_at + timedelta(seconds=61))
    assert f"escalated:{alert_id}:1" in done
    done = await run_scan(conn, raised_at + timedelta(seconds=62))
    assert not [d for d in done if str(alert_id) in d]  # the next step is due at 180 s
    await telemetry.post(f"/v1/alerts/{alert_id}/ack")
    done = await run_scan(conn, raised_at + timedelta(seconds=500))
    assert not [d for d in done if str(alert_id) in d]  # acknowledged: no more escalation
    history = (await telemetry.get(f"/v1/alerts/{alert_id}/history")).json()
    assert [h["action"] for h in history["items"]] == ["raised", "escalated", "acknowledged"]
    assert history["items"][1]["detail"] == {
        "step": 1,
        "of": 3,
        "notify": ["duty_desk"],
        "final": False,
    }


async def test_housekeeping_keeps_partitions_ahead_and_drops_old(conn):
    now = datetime(2027, 6, 15, tzinfo=UTC)
    result = await housekeeping(conn, now, only_events(400))
    names = {
        r["relname"]
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'"
        )
    }
    assert {"events_2027_06", "events_2027_07", "events_2027_08", "events_2027_09"} <= names
    assert result["partitions_made"] >= 4
    result = await housekeeping(conn, datetime(2029, 1, 1, tzinfo=UTC), only_events(30))
    names = {
        r["relname"]
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'"
        )
    }
    assert "events_2027_06" not in names and "events_default" in names
    assert result["partitions_dropped"] >= 4


async def test_housekeeping_survives_rows_stranded_in_the_default_partition(conn):
    stranded = datetime(2031, 3, 10, tzinfo=UTC)  # no partition prepared for it
    await conn.execute(
        "INSERT INTO telemetry.events (received_at, device_id, msg_id, device_ts, gateway_id, "
        "event, skew_s, data) VALUES ($1, 'dev-stranded', 'm-1', $1, 'gw-x', 'heartbeat', 0, "
        "'{}')",
        stranded,
    )
    result = await housekeeping(conn, datetime(2031, 3, 1, tzinfo=UTC), only_events(3650))
    names = {
        r["relname"]
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'"
        )
    }
    assert "events_2031_03" not in names  # its rows are in the default partition
    assert {"events_2031_04", "events_2031_05", "events_2031_06"} <= names
    assert result["partitions_made"] >= 3


async def test_per_home_schedule_sets_the_inactivity_window(registry, telemetry, conn):
    home = await make_home(registry)
    r = await telemetry.client.put(
        f"/v1/elders/{home['elder_id']}/monitoring",
        json={"schedule": {"inactivity_hours": 1}},
        headers=telemetry.auth("admin"),
    )
    assert r.status_code == 200
    t0 = DAY - timedelta(minutes=90)
    await feed(conn, t0, msg(home, "pir", "motion", ts=t0, room="kitchen", state="active"))
    assert "inactivity" in mine(await run_scan(conn, DAY), home)  # default 4 h would not


async def test_a_resolved_offline_alert_is_not_raised_again_for_the_same_silence(
    registry, telemetry, conn
):
    home = await make_home(registry)
    t0 = datetime.now(UTC)
    await feed(conn, t0, msg(home, "btn", "heartbeat", ts=t0, battery=80))
    silent = t0 + timedelta(seconds=181)
    assert "device_offline" in mine(await run_scan(conn, silent), home)
    alert = (await telemetry.get("/v1/alerts", params={"elder_id": home["elder_id"]})).json()
    (offline,) = [a for a in alert["items"] if a["kind"] == "device_offline"]
    assert offline["details"]["last_seen_at"]
    r = await telemetry.post(f"/v1/alerts/{offline['id']}/resolve", {"note": "已通知家属"})
    assert r.status_code == 200
    # the desk is not asked again 10 s later, nor hours later, for this silence
    for later in (10, 3600, 23 * 3600):
        scanned = mine(await run_scan(conn, silent + timedelta(seconds=later)), home)
        assert "device_offline" not in scanned, later
    # the device reports and falls silent again: that is a new silence
    t1 = t0 + timedelta(seconds=400)
    await feed(conn, t1, msg(home, "btn", "heartbeat", ts=t1, battery=80))
    assert "device_offline" in mine(await run_scan(conn, t1 + timedelta(seconds=181)), home)


async def test_a_silence_that_lasts_is_raised_again_after_the_realert_interval(
    registry, telemetry, conn
):
    home = await make_home(registry)
    t0 = datetime.now(UTC)
    await feed(conn, t0, msg(home, "vit", "heartbeat", ts=t0, battery=80))
    assert "device_offline" in mine(await run_scan(conn, t0 + timedelta(seconds=181)), home)
    page = (await telemetry.get("/v1/alerts", params={"elder_id": home["elder_id"]})).json()
    (offline,) = [a for a in page["items"] if a["kind"] == "device_offline"]
    await telemetry.post(f"/v1/alerts/{offline['id']}/resolve")
    realert = rules.defaults().offline_realert_after_s
    assert "device_offline" in mine(
        await run_scan(conn, datetime.now(UTC) + timedelta(seconds=realert + 60)), home
    )


async def test_escalation_ends_after_a_finite_chain(registry, telemetry, conn):
    """However long nobody answers: three steps (the critical chain), then the alert stays
    open, marked exhausted, and its log stops growing."""
    home = await make_home(registry)
    t0 = datetime.now(UTC)
    await feed(conn, t0, msg(home, "btn", "emergency", ts=t0, button="main"))
    alert_id, raised_at = await conn.fetchrow(
        "SELECT id, raised_at FROM telemetry.alerts WHERE gateway_id = $1", home["gateway"]
    )
    levels = []
    for after_s in (61, 181, 601, 3600, 86400, 30 * 86400, 365 * 86400):
        done = await run_scan(conn, raised_at + timedelta(seconds=after_s))
        levels += [int(d.rsplit(":", 1)[1]) for d in done if d.startswith(f"escalated:{alert_id}")]
    assert levels == [1, 2, 3]
    alert = (await telemetry.get(f"/v1/alerts/{alert_id}")).json()
    assert alert["status"] == "open" and alert["escalation_level"] == 3
    assert alert["escalation_exhausted_at"] is not None
    history = (await telemetry.get(f"/v1/alerts/{alert_id}/history")).json()["items"]
    assert [h["action"] for h in history] == ["raised", "escalated", "escalated", "escalated"]
    assert [h["detail"]["notify"] for h in history[1:]] == [
        ["duty_desk"],
        ["duty_desk", "org", "family"],
        ["duty_desk", "org", "family", "community"],
    ]
    assert [h["detail"]["final"] for h in history[1:]] == [False, False, True]
    snapshots = await conn.fetch(
        "SELECT snapshot FROM telemetry.alert_log WHERE alert_id = $1 ORDER BY seq", alert_id
    )
    assert len(snapshots) == 4  # bounded: nothing more however long it stays open
    # each step's snapshot (the SSE event's alert) is the alert as that step left it
    levels = [orjson.loads(r["snapshot"])["escalation_level"] for r in snapshots]
    assert levels == [0, 1, 2, 3]
    assert orjson.loads(snapshots[-1]["snapshot"])["escalation_exhausted_at"]


async def test_a_scan_is_a_fixed_number_of_statements_however_many_homes(registry, conn):
    """Set-based: three silent homes (21 devices) cost the same statements as one would;
    the per-row monitor took three statements per alert."""
    homes = [await make_home(registry) for _ in range(3)]
    t0 = datetime.now(UTC)
    for home in homes:
        await feed(
            conn, t0, *(msg(home, p, "heartbeat", ts=t0, battery=90) for p in home["devices"])
        )
        await feed(
            conn,
            t0,
            (
                f"eldercare/v1/{home['gateway']}/{home['gateway']}/heartbeat",
                msg(home, "btn", "heartbeat", ts=t0, battery=90)[1],
            ),
        )
    statements: list[str] = []

    def count(record) -> None:
        statements.append(record.query)

    conn.add_query_logger(count)
    try:
        done = await run_scan(conn, t0 + timedelta(seconds=181))
    finally:
        conn.remove_query_logger(count)
    raised = [d for d in done if any(h["gateway"] in d for h in homes)]
    assert len(raised) == 3 * (len(homes[0]["devices"]) + 1)
    # lock + 5 reads + ≤ 4 closes + 5 raise statements + 1 escalation
    assert len(statements) <= 16, statements


async def test_a_resolved_inactivity_alert_is_raised_again_only_after_another_full_limit(
    registry, telemetry, conn
):
    home = await make_home(registry)
    t0 = DAY - timedelta(hours=3)  # 07:00 in Shanghai
    await feed(conn, t0, msg(home, "pir", "motion", ts=t0, room="kitchen", state="active"))
    eleven = DAY + timedelta(hours=1)
    assert "inactivity" in mine(await run_scan(conn, eleven), home)
    page = (await telemetry.get("/v1/alerts", params={"elder_id": home["elder_id"]})).json()
    (alert,) = [a for a in page["items"] if a["kind"] == "inactivity"]
    await telemetry.post(f"/v1/alerts/{alert['id']}/resolve", {"note": "电话确认老人安好"})
    # the desk called, the elder is fine: not asked again at once, nor within four hours
    for later in (timedelta(seconds=10), timedelta(hours=3, minutes=59)):
        assert "inactivity" not in mine(await run_scan(conn, eleven + later), home)
    # still nothing moved four daytime hours after that alert: asked again
    assert "inactivity" in mine(await run_scan(conn, eleven + timedelta(hours=4)), home)
