"""Each service keeps its Idempotency-Keys as long as its slowest client needs them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from shared import idempotency
from shared.db import create_engine, create_sessionmaker


async def test_a_service_purges_only_its_own_keys_after_its_own_retention(database_url):
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    sessions = create_sessionmaker(engine)
    principal = uuid.uuid4().hex
    now = datetime.now(UTC)
    ages = {"registry": timedelta(days=2), "dispatch": timedelta(days=2)}
    try:
        async with sessions.begin() as session:
            for service, age in ages.items():
                await session.execute(
                    text(
                        "INSERT INTO common.idempotency_keys (service, principal, key, "
                        "fingerprint, created_at) VALUES (:s, :p, 'k', '\\x00', :at)"
                    ),
                    {"s": service, "p": principal, "at": now - age},
                )
        async with sessions.begin() as session:
            await idempotency.purge_expired(session, service="registry", now=now)
            await idempotency.purge_expired(
                session, service="dispatch", retention=timedelta(days=14), now=now
            )
        async with sessions.begin() as session:
            left = await session.scalars(
                text("SELECT service FROM common.idempotency_keys WHERE principal = :p"),
                {"p": principal},
            )
            assert list(left) == ["dispatch"]  # two days old: a handset may still replay it
    finally:
        await engine.dispose()


def test_dispatch_promises_handsets_days_not_hours(settings):
    from services.dispatch.app import create_app

    spec = create_app(settings).openapi()
    check_in = spec["paths"]["/v1/visits/{visit_id}/check-in"]["post"]
    [key] = [p for p in check_in["parameters"] if p["name"] == "Idempotency-Key"]
    assert "15 days" in key["description"]
