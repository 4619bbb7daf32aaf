"""The subsidy REST app (``uvicorn --factory services.subsidy.app:create_app``)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from services.subsidy import __doc__ as DESCRIPTION
from services.subsidy.applications.router import router as applications
from services.subsidy.benefits.router import router as benefits
from services.subsidy.callbacks.router import router as callbacks
from services.subsidy.evaluations.router import router as evaluations
from services.subsidy.fraud.router import router as fraud
from services.subsidy.ledger.router import router as ledger
from services.subsidy.policies import service as policies
from services.subsidy.policies.router import router as policy_routes
from services.subsidy.reports.router import router as reports
from services.subsidy.rewards.router import router as rewards
from services.subsidy.runs.router import router as runs
from services.subsidy.runs.worker import RunWorker
from services.subsidy.settlements.router import router as settlements
from services.subsidy.vouchers.router import router as vouchers
from shared import app as app_factory
from shared.config import Settings, get_settings


async def load_policies(app: FastAPI) -> None:
    """Validate and load the bundled policies; a bundled policy that fails validation stops
    the service here, not at the first payment."""
    async with app.state.sessionmaker.begin() as session:
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('subsidy-policies'))"))
        await policies.sync_bundled(session)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    async def start_worker(app: FastAPI) -> None:
        app.state.run_worker = RunWorker(app.state.sessionmaker, settings)
        app.state.run_worker.start()

    async def stop_worker(app: FastAPI) -> None:
        await app.state.run_worker.stop()

    return app_factory.create_app(
        service="subsidy",
        title="Eldercare subsidy",
        description=DESCRIPTION or "",
        routers=[
            policy_routes,
            evaluations,
            runs,
            ledger,
            vouchers,
            settlements,
            fraud,
            rewards,
            benefits,
            applications,
            reports,
            callbacks,
        ],
        settings=settings,
        on_startup=[load_policies, start_worker],
        on_shutdown=[stop_worker],
    )
