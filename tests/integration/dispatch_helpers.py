"""Dispatch test fixtures and builders: the dispatch app (background loops off unless a test
starts them), staff members and homes created through the registry API."""

from __future__ import annotations

import asyncio
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


async def staff_north_of(registry, org: dict, home: tuple[float, float], dlat: float) -> dict:
    """A caregiver at a station of its own ``dlat`` degrees north of ``home``."""
    return await make_staff(
        registry, org, station=await add_station(registry, org, home[0] + dlat, home[1])
    )


async def new_visit(
    dispatch, home, staff, *, start_ago_min=120, minutes=60, items=("助餐", "cleaning"), **claims
) -> dict:
    """An ad-hoc visit of ``staff`` at ``home`` (planned by its org unless ``claims`` say who)."""
    start = datetime.now(UTC) - timedelta(minutes=start_ago_min)
    r = await dispatch.post(
        "/v1/visits",
        {
            "bed_id": home["bed"]["id"],
            "staff_id": staff["id"],
            "planned_start": start.isoformat(),
            "planned_end": (start + timedelta(minutes=minutes)).isoformat(),
            "items": list(items),
        },
        **(claims or {"role": "org_admin", "org": home["org"]["id"]}),
    )
    assert r.status_code == 201, r.text
    return r.json()


@contextlib.asynccontextmanager
async def services_running(settings, broker, *, registry: bool = False):
    """Telemetry and dispatch (and the registry) as real HTTP servers on free ports, the
    ingest worker and telemetry's relay to dispatch: the services as ``eldercare up`` runs
    them, only HTTP between them. Yields the settings that name them."""
    from services.dispatch.app import create_app as dispatch_app
    from services.registry.app import create_app as registry_app
    from services.telemetry.app import create_app as telemetry_app
    from services.telemetry.ingest.worker import IngestWorker
    from services.telemetry.outbox.relay import Relay

    rport, tport, dport = free_port(), free_port(), free_port()
    s = settings.model_copy(
        update={
            "mqtt_url": broker.url,
            "mqtt_shared": broker.shared,
            "telemetry_url": f"http://127.0.0.1:{tport}",
            "dispatch_url": f"http://127.0.0.1:{dport}",
            "dispatch_background": True,
            **({"registry_url": f"http://127.0.0.1:{rport}"} if registry else {}),
        }
    )
    with contextlib.ExitStack() as stack:
        if registry:
            stack.enter_context(serving(registry_app(s), rport))
        stack.enter_context(serving(telemetry_app(s), tport))
        stack.enter_context(serving(dispatch_app(s), dport))
        stop = asyncio.Event()
        worker = IngestWorker(s, client_id="ingest-test")  # the suite's one persistent session
        tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(Relay(s).run(stop))]
        try:
            assert await asyncio.to_thread(worker.subscribed.wait, 15), "worker never subscribed"
            yield s
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 15)


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
