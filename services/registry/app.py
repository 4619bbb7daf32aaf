"""The registry's ASGI app (``uvicorn --factory services.registry.app:create_app``)."""

from __future__ import annotations

from fastapi import FastAPI

from services.registry import __doc__ as DESCRIPTION
from services.registry.assessments.router import router as assessments
from services.registry.beds.router import router as beds
from services.registry.calendar.router import router as calendar
from services.registry.caregivers.router import router as caregivers
from services.registry.categories.router import router as categories
from services.registry.devices.router import router as devices
from services.registry.elders.fastpath import ElderReadFastPath
from services.registry.elders.moves import flows as moves_flows
from services.registry.elders.moves.router import router as moves
from services.registry.elders.router import router as elders
from services.registry.orgs.router import router as orgs
from shared import app as app_factory
from shared.config import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return app_factory.create_app(
        service="registry",
        title="Eldercare registry",
        description=DESCRIPTION or "",
        routers=[elders, moves, assessments, categories, caregivers, orgs, beds, devices, calendar],
        settings=settings,
        fast_paths=[ElderReadFastPath],
        on_startup=[moves_flows.start],
        on_shutdown=[moves_flows.stop],
    )
