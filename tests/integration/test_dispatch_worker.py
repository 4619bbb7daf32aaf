"""Dispatch's background loops for real: a restart in the middle of a chain loses no timer;
notifications leave as signed webhooks with retries; the outbox reaches telemetry."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson

from services.dispatch.notifications import sender
from tests.integration.dispatch_helpers import (
    caregiver,
    make_bed_home,
    make_staff,
    serving,
    staff_north_of,
)
from tests.waiting import eventually

HOME = (24.7236, 118.1520)


def handoff(elder_id: str) -> dict:
    return {
        "alert_id": str(uuid.uuid4()),
        "elder_id": elder_id,
        "kind": "emergency",
        "raised_at": datetime.now(UTC).isoformat(),
    }


class App:
    """A dispatch app with its background loops, started and stopped like a process."""

    def __init__(self, settings) -> None:
        from services.dispatch.app import create_app

        self.app = create_app(settings.model_copy(update={"dispatch_background": True}))
        self._cm = None
        self.client: httpx.AsyncClient | None = None

    async def __aenter__(self):
        self._cm = self.app.router.lifespan_context(self.app)
        await self._cm.__aenter__()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://dispatch"
        )
        return self

    async def __aexit__(self, *exc):
        await self.client.aclose()
        await self._cm.__aexit__(None, None, None)

    def auth(self, role="admin", **claims):
        return {"Authorization": "Bearer " + self.app.state.token_codec.issue(role=role, **claims)}


async def test_restart_in_the_middle_of_a_chain_loses_no_timer(registry, settings):
    home = await make_bed_home(registry)
    org = home["org"]
    a = await staff_north_of(registry, org, HOME, 0.001)
    b = await staff_north_of(registry, org, HOME, 0.003)
    async with App(settings) as first:
        r = await first.client.put(
            f"/v1/orgs/{org['id']}/dispatch-settings",
            json={
                "chain": {
                    "steps": [{"action": "offer", "wait_s": 2}, {"action": "offer", "wait_s": 60}]
                }
            },
            headers=first.auth(),
        )
        assert r.status_code == 200, r.text
        r = await first.client.post(
            "/v1/dispatches", json=handoff(home["elder"]["id"]), headers=first.auth("service")
        )
        d = r.json()
        assert d["staff_id"] == a["id"] and d["due_at"]
    # dispatch is down while the wait ends
    await asyncio.sleep(2.5)
    async with App(settings) as second:

        async def offered_to_b():
            r = await second.client.get(f"/v1/dispatches/{d['id']}", headers=second.auth())
            return r.json()["staff_id"] == b["id"] and r.json()

        moved = await eventually(offered_to_b, within=10, interval=0.1)
        assert [s["action"] for s in moved["steps"]] == [
            "received",
            "offered",
            "timed_out",
            "offered",
        ]


async def test_notifications_are_signed_webhooks_retried_until_delivered(registry, settings):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    received: list[tuple[dict, bytes]] = []
    fail_first = {"left": 1}

    async def hook(request):
        body = await request.body()
        if fail_first["left"]:
            fail_first["left"] -= 1
            return JSONResponse({"error": "busy"}, status_code=503)
        received.append((dict(request.headers), body))
        return JSONResponse({"ok": True})

    secret = "hook-secret-" + "s" * 20
    with serving(
        Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
    ) as hook_server:
        s = settings.model_copy(
            update={
                "dispatch_webhook_url": hook_server.url + "/hook",
                "dispatch_webhook_secret": secret,
            }
        )
        from tests.integration.builders import make_elder

        elder = await make_elder(registry)  # no bed: the family is notified at once
        async with App(s) as app:
            r = await app.client.post(
                "/v1/dispatches", json=handoff(elder["id"]), headers=app.auth("service")
            )
            assert r.status_code == 201

            async def both():
                events = [orjson.loads(b)["event"] for _, b in received]
                return {"notify_family", "notify_community"} <= set(events)

            await eventually(both, within=15, interval=0.1)
    headers, body = next((h, b) for h, b in received if orjson.loads(b)["event"] == "notify_family")
    ts = headers["x-eldercare-timestamp"]
    expected = (
        "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    assert headers["x-eldercare-signature"] == expected
    assert sender.verify(secret, ts, body, headers["x-eldercare-signature"])
    assert not sender.verify("wrong", ts, body, headers["x-eldercare-signature"])
    payload = orjson.loads(body)
    assert (
        payload["recipient"]["phone_masked"] == "139****0000"
        and "phone" not in payload["recipient"]
    )
    assert headers["idempotency-key"].startswith("notification:")


async def test_outbox_delivers_visit_mode_to_telemetry(registry, settings, database_url):
    from services.telemetry.app import create_app as telemetry_app

    home = await make_bed_home(registry)
    staff = await make_staff(registry, home["org"])
    with serving(telemetry_app(settings)) as tele:
        s = settings.model_copy(update={"telemetry_url": tele.url})
        async with App(s) as app:
            start = datetime.now(UTC)
            r = await app.client.post(
                "/v1/visits",
                json={
                    "bed_id": home["bed"]["id"],
                    "staff_id": staff["id"],
                    "planned_start": start.isoformat(),
                    "planned_end": (start + timedelta(hours=1)).isoformat(),
                    "items": ["meal"],
                },
                headers=app.auth("org_admin", org=home["org"]["id"]),
            )
            assert r.status_code == 201, r.text
            r = await app.client.post(
                f"/v1/visits/{r.json()['id']}/check-in",
                json={"lat": HOME[0], "lon": HOME[1], "at": datetime.now(UTC).isoformat()},
                headers=app.auth(**caregiver(staff)),
            )
            assert r.status_code == 201, r.text
            conn = await asyncpg.connect(database_url)
            try:

                async def visit_mode_on():
                    rows = await conn.fetch(
                        "SELECT staff_id FROM telemetry.visit_mode WHERE elder_id = $1",
                        uuid.UUID(home["elder"]["id"]),
                    )
                    return [str(x["staff_id"]) for x in rows] == [staff["id"]]

                await eventually(visit_mode_on, within=15, interval=0.1)
            finally:
                await conn.close()


class Failing:
    """A provider that never takes a message."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    async def send(self, message) -> None:
        self.sent.append(message.id)
        raise sender.DeliveryError("HTTP 503: provider down")


async def test_a_message_given_up_on_is_recorded_and_the_desk_is_told(registry, database_url):
    from services.dispatch.notifications import delivery
    from tests.integration.builders import make_elder

    elder = await make_elder(registry)
    did = uuid.uuid4()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await pool.execute(
            "INSERT INTO dispatch.dispatches (id, alert_id, elder_id, kind, raised_at, status, "
            "chain, step_index, round, candidates, next_candidate) "
            "VALUES ($1, $2, $3, 'fall', now(), 'escalated', '{}', 0, 0, '[]', 0)",
            did,
            uuid.uuid4(),
            uuid.UUID(elder["id"]),
        )
        # a family message on its last attempt, and a first-attempt one for the same dispatch
        last = await pool.fetchval(
            "INSERT INTO dispatch.notifications (dispatch_id, event, recipient_kind, payload, "
            "status, attempts) VALUES ($1, 'notify_family', 'family', '{}', 'pending', 11) "
            "RETURNING id",
            did,
        )
        fresh = await pool.fetchval(
            "INSERT INTO dispatch.notifications (dispatch_id, event, recipient_kind, payload, "
            "status, attempts) VALUES ($1, 'notify_community', 'community', '{}', 'pending', 0) "
            "RETURNING id",
            did,
        )
        provider = Failing()
        leased = failed = 0
        while leased == failed:  # other tests' rows may be due too; ours among them
            leased, failed = await delivery.deliver_due(pool, provider)
            if {last, fresh} <= set(provider.sent):
                break
        rows = {
            r["id"]: r
            for r in await pool.fetch(
                "SELECT id, status, attempts, next_attempt_at > now() AS later, last_error "
                "FROM dispatch.notifications WHERE dispatch_id = $1",
                did,
            )
        }
        assert rows[last]["status"] == "failed" and rows[last]["attempts"] == 12
        assert rows[fresh]["status"] == "pending" and rows[fresh]["later"]  # backs off
        assert rows[fresh]["last_error"] == "HTTP 503: provider down"
        desk = [r for i, r in rows.items() if i not in (last, fresh)]
        assert [r["status"] for r in desk] == ["pending"]  # the desk hears of it
        step = await pool.fetchrow(
            "SELECT action, detail FROM dispatch.dispatch_steps WHERE dispatch_id = $1", did
        )
        assert step["action"] == "notification_failed"
        assert orjson.loads(step["detail"])["notification_id"] == last
    finally:
        await pool.close()


async def test_relay_settles_a_batch_at_once_and_a_dead_receiver_costs_no_busy_loop(
    settings, database_url
):
    from services.dispatch.outbox.relay import Relay

    dead = settings.model_copy(update={"telemetry_url": "http://127.0.0.1:9"})
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    relay = Relay(dead)
    try:
        keys = [f"test-dead:{uuid.uuid4()}" for _ in range(3)]
        await pool.executemany(
            "INSERT INTO dispatch.outbox (target, method, path, body, idempotency_key, attempts) "
            "VALUES ('telemetry', 'PUT', '/v1/nowhere', '{}', $1, 0)",
            [(k,) for k in keys],
        )

        async def mine():
            return await pool.fetch(
                "SELECT attempts, delivered_at, last_error, next_attempt_at > now() AS later "
                "FROM dispatch.outbox WHERE idempotency_key = ANY($1)",
                keys,
            )

        while any(r["attempts"] == 0 for r in await mine()):
            await relay.deliver_due(pool)
        rows = await mine()
        assert all(r["attempts"] == 1 and r["delivered_at"] is None and r["later"] for r in rows)
        assert all(r["last_error"].startswith("ConnectError") for r in rows)
        # straight away again: our rows are not due, so they are not tried
        await relay.deliver_due(pool)
        assert [r["attempts"] for r in await mine()] == [1, 1, 1]
    finally:
        await pool.execute("DELETE FROM dispatch.outbox WHERE idempotency_key LIKE 'test-dead:%'")
        await relay.close()
        await pool.close()
