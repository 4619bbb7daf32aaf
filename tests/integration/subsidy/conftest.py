"""Fixtures of the subsidy suite: the subsidy app on the session's real PostgreSQL and a raw
connection for set-up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from shared.config import Settings
from shared.db import plain_url
from tests.conftest import Api


@pytest.fixture(scope="session")
async def subsidy(settings: Settings) -> AsyncIterator[Api]:
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
