"""Dispatch test fixtures and builders: the dispatch app (background loops off unless a test
starts them), staff members and homes created through the registry API."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn

from shared import clock
from shared.embedded import free_port
from tests.conftest import Api
from tests.integration.builders import make_bed, make_elder, make_org


@pytest.fixture(scope="session")
async def dispatch(settings) -> AsyncIterator[Api]:
    from services.dispatch.app import create_app

    app = create_app(settings.model_copy(update={"dispatch_background": False}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dispatch") as client:
            yield Api(client, app)


async def make_staff(
    registry,
    org: dict,
    *,
    role: str = "caregiver",
    on_duty: bool = True,
    insured: bool = True,
    station: dict | None = None,
) -> dict:
    body = {
        "name": "护理员" + uuid.uuid4().hex[:4],
        "role": role,
        "phone": "13700000000",
        "station_id": (station or org["station"])["id"],
        "on_duty": on_duty,
        "insured_until": str(clock.today() + timedelta(days=300 if insured else -1)),
    }
    r = await registry.post(f"/v1/orgs/{org['id']}/staff", body)
    assert r.status_code == 201, r.text
    return r.json()


async def add_station(registry, org: dict, lat: float, lon: float, zone: str = "urban") -> dict:
    r = await registry.post(
        f"/v1/orgs/{org['id']}/stations",
        {"name": "站" + uuid.uuid4().hex[:4], "lat": lat, "lon": lon, "zone": zone},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def make_bed_home(registry, org: dict | None = None, **elder) -> dict:
    org = org or await make_org(registry)
    e = await make_elder(registry, **elder)
    bed = await make_bed(registry, e, org)
    return {"org": org, "elder": e, "bed": bed}


def caregiver(staff: dict) -> dict:
    """Token claims of a caregiver."""
    return {"role": "caregiver", "org": staff["org_id"], "staff": staff["id"]}


def at(minutes_ago: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


class ServerThread:
    """A real uvicorn server for an ASGI app in a thread (for HTTP between services)."""

    def __init__(self, app, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise TimeoutError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@contextlib.contextmanager
def serving(app, port: int | None = None):
    with ServerThread(app, port) as s:
        yield s
