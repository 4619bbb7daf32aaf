"""The outbox relay logs ids and the kind of failure, never a body or a receiver's answer."""

from __future__ import annotations

import logging
import uuid

import asyncpg
import httpx

from services.telemetry.outbox.relay import Relay
from shared.outbox import Sender


async def test_a_failed_delivery_is_logged_without_the_answer(settings, database_url, caplog):
    conn = await asyncpg.connect(database_url)
    alert_id = uuid.uuid4()
    secret = f"spo2 83 for elder {uuid.uuid4()}"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": secret, "echo": request.content.decode()})

    try:
        row_id = await conn.fetchval(
            "INSERT INTO telemetry.outbox (alert_id, target, method, path, body, "
            "idempotency_key, created_at, attempts, next_attempt_at) VALUES ($1, 'dispatch', "
            "'POST', '/v1/dispatches', $2, $3, now(), 0, now()) RETURNING id",
            alert_id,
            f'{{"alert_id": "{alert_id}", "note": "{secret}"}}',
            f"test:{alert_id}",
        )
        relay = Relay(settings, transport=httpx.MockTransport(answer))
        caplog.set_level(logging.INFO, logger="services.telemetry.outbox.relay")
        row = await conn.fetchrow("SELECT * FROM telemetry.outbox WHERE id = $1", row_id)
        # one delivery of this row (deliver_due would take other tests' rows too)
        sender = Sender(settings, sub="test", transport=relay.transport)
        try:
            error = await sender.send(row)
        finally:
            await sender.close()
        async with conn.transaction():
            await relay.settle(conn, [row], [error])
        row = await conn.fetchrow("SELECT * FROM telemetry.outbox WHERE id = $1", row_id)
    finally:
        await conn.execute("DELETE FROM telemetry.outbox WHERE alert_id = $1", alert_id)
        await conn.close()
    assert row["attempts"] == 1 and secret in row["last_error"]  # kept where ops can look
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("relay")]
    assert any(str(row_id) in line and "HTTP 422" in line for line in lines)
    assert all(secret not in line and "echo" not in line for line in lines)
