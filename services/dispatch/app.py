"""The dispatch ASGI app (``uvicorn --factory services.dispatch.app:create_app``)."""

from __future__ import annotations

import gc
from datetime import timedelta

from fastapi import FastAPI

from services.dispatch import __doc__ as DESCRIPTION
from services.dispatch import policy as dispatch_policy
from services.dispatch.catalogue import service as catalogue
from services.dispatch.catalogue.router import router as catalogue_router
from services.dispatch.chains.router import router as chains
from services.dispatch.compliance.router import router as compliance
from services.dispatch.coverage.router import router as coverage
from services.dispatch.coverage.travel import travel_model
from services.dispatch.dispatches.router import router as dispatches
from services.dispatch.kpis.router import router as kpis
from services.dispatch.plans.router import router as plans
from services.dispatch.routes.router import router as routes
from services.dispatch.visits.router import router as visits
from services.dispatch.worker import DispatchWorker
from shared import app as app_factory
from shared.config import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    policy = dispatch_policy.load()

    async def start(app: FastAPI) -> None:
        app.state.policy = policy
        app.state.travel = travel_model(policy, settings)
        async with app.state.sessionmaker.begin() as session:
            await catalogue.seed(session=session)
        app.state.worker = None
        if settings.dispatch_background:
            app.state.worker = DispatchWorker(settings, app.state.sessionmaker)
            await app.state.worker.start()
        settle_heap()

    async def stop(app: FastAPI) -> None:
        if app.state.worker is not None:
            await app.state.worker.close()

    return app_factory.create_app(
        service="dispatch",
        title="Eldercare dispatch",
        description=DESCRIPTION or "",
        routers=[
            coverage,
            catalogue_router,
            plans,
            visits,
            routes,
            compliance,
            dispatches,
            chains,
            kpis,
        ],
        settings=settings,
        on_startup=[start],
        on_shutdown=[stop],
        # A handset offline for days replays its check-ins with the same keys: they must
        # still be remembered then (as long as such uploads are accepted at all).
        idempotency_retention=timedelta(days=policy.evv.max_backdate_days + 1),
    )


def settle_heap() -> None:
    """What is loaded at startup lives as long as the process: moved out of the cyclic
    collector's reach, a full collection no longer walks it (~90 ms over the ~200 000 objects
    of numpy, scipy and VROOM here: a hand-off caught by one missed its latency target)."""
    import vroom  # noqa: F401  (the solver's heavy import, pandas included, paid here)

    gc.collect()
    gc.freeze()
