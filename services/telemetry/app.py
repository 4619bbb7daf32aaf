"""The telemetry REST app (``uvicorn --factory services.telemetry.app:create_app``)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from services.telemetry import __doc__ as DESCRIPTION
from services.telemetry.alerts.router import router as alerts
from services.telemetry.alerts.stream import Broadcaster
from services.telemetry.deadletters.router import router as dead_letters
from services.telemetry.events.router import router as events
from services.telemetry.gateways.router import router as gateways
from services.telemetry.ingest.health import check_recorded
from services.telemetry.monitoring.router import router as monitoring
from shared import app as app_factory
from shared.config import Settings, get_settings
from shared.db import plain_url
from shared.mqtt import parse_url


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    async def start_broadcaster(app: FastAPI) -> None:
        app.state.broadcaster = Broadcaster()
        await app.state.broadcaster.start(plain_url(settings.database_url))

    async def stop_broadcaster(app: FastAPI) -> None:
        await app.state.broadcaster.stop()

    async def check_broker(request) -> None:
        address = parse_url(settings.mqtt_url or f"mqtt://127.0.0.1:{settings.mqtt_port}")
        _, writer = await asyncio.wait_for(asyncio.open_connection(address.host, address.port), 2.0)
        writer.close()
        await writer.wait_closed()

    async def check_ingest(request) -> None:
        # Red while an ingest process reports (fresh row) that it cannot store: ops see it
        # here and on the ingest's own /readyz, without reading logs.
        await check_recorded(request.app.state.read_pool)

    return app_factory.create_app(
        service="telemetry",
        title="Eldercare telemetry",
        description=DESCRIPTION or "",
        routers=[alerts, events, gateways, monitoring, dead_letters],
        settings=settings,
        on_startup=[start_broadcaster],
        on_shutdown=[stop_broadcaster],
        ready_checks={"broker": check_broker, "ingest": check_ingest},
    )
