"""Fixtures of the subsidy suite: the subsidy app on the session's real PostgreSQL, the
verified-visits stand-in (until dispatch creates its view), a raw connection for set-up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from shared.config import Settings
from shared.db import plain_url
from tests.conftest import Api
from tests.integration.subsidy_helpers import ensure_verified_visits


@pytest.fixture(scope="session", autouse=True)
async def verified_visits_table(database_url: str) -> bool:
    return await ensure_verified_visits(database_url)


@pytest.fixture(scope="session")
async def subsidy(settings: Settings, verified_visits_table) -> AsyncIterator[Api]:
    from services.subsidy.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://subsidy") as client:
            yield Api(client, app)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        yield conn
    finally:
        await conn.close()
