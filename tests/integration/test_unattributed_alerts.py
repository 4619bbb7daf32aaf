"""A possible emergency nobody can be attributed to reaches a district's duty desk."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import orjson

from services.telemetry.ingest.pipeline import Message, Pipeline


async def test_every_civil_affairs_admin_sees_an_emergency_of_no_known_home(
    telemetry, database_url
):
    gw, dev = f"gw-ghost-{uuid.uuid4().hex[:8]}", f"btn-ghost-{uuid.uuid4().hex[:8]}"
    topic = f"eldercare/v1/{gw}/{dev}/emergency"
    payload = orjson.dumps({"msg_id": "lost", "ts": datetime.now(UTC).isoformat()})
    conn = await asyncpg.connect(database_url)
    try:
        await Pipeline().commit(conn, [Message(topic, payload, datetime.now(UTC))])
    finally:
        await conn.close()

    async def kinds(**claims) -> set[str]:
        r = await telemetry.get(
            "/v1/alerts", params={"kind": "unknown_device_emergency", "limit": 200}, **claims
        )
        assert r.status_code == 200, r.text
        return {a["gateway_id"] for a in r.json()["items"]}

    assert gw in await kinds(role="admin", region="350212")  # a district's duty desk
    assert gw in await kinds(role="admin")
    assert gw not in await kinds(role="community", region="350212")
    assert gw not in await kinds(role="org_admin", org=str(uuid.uuid4()))
