"""The one way a service builds its FastAPI app: errors, auth, unit of work, observability."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import text
from starlette.types import Scope

from shared import fastread, idempotency, openapi
from shared.auth import TokenCodec, principal_from_header
from shared.config import Settings, get_settings
from shared.db import create_engine, create_sessionmaker, plain_url
from shared.errors import PROBLEM_RESPONSES, Unauthorized, install_error_handlers
from shared.observability import (
    ObservabilityMiddleware,
    ReadyCheck,
    configure_logging,
    health_router,
)
from shared.pii import PiiCipher
from shared.uow import UnitOfWorkMiddleware, header

log = logging.getLogger(__name__)

Hook = Callable[[FastAPI], Awaitable[None]]


async def check_database(request: Request) -> None:
    async with request.app.state.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _purge_idempotency_keys(app: FastAPI, retention: timedelta) -> None:
    while True:
        try:
            async with app.state.sessionmaker.begin() as session:
                await idempotency.purge_expired(
                    session, service=app.state.service, retention=retention
                )
        except Exception:  # a purge failure must never take the service down
            log.warning("idempotency purge failed", exc_info=True)
        await asyncio.sleep(3600)


def _spoken(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours // 24} days" if hours % 24 == 0 and hours >= 48 else f"{hours} hours"


def create_app(
    *,
    service: str,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    settings: Settings | None = None,
    ready_checks: dict[str, ReadyCheck] | None = None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    openapi_tags: list[dict[str, Any]] | None = None,
    fast_paths: Sequence[type] = (),
    idempotency_retention: timedelta = idempotency.RETENTION,
) -> FastAPI:
    """``fast_paths``: ASGI middlewares (``cls(app, state=app.state)``) that answer a few hot
    requests themselves; they sit inside the observability layer, outside the unit of work.
    ``idempotency_retention``: how long this service replays a POST's answer to a retry with
    the same ``Idempotency-Key`` (what its slowest client may need: days for handsets)."""
    settings = settings or get_settings()
    if not settings.database_url:
        raise RuntimeError("ELDERCARE_DATABASE_URL is not set (eldercare up sets it for you)")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.log_json:  # tests keep pytest's own log capture
            configure_logging(service, level=settings.log_level)
        engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.read_pool = await fastread.create_pool(
            plain_url(settings.database_url), size=settings.db_pool_size
        )
        for hook in on_startup:
            await hook(app)
        purger = asyncio.create_task(_purge_idempotency_keys(app, idempotency_retention))
        try:
            yield
        finally:
            for hook in on_shutdown:
                await hook(app)
            purger.cancel()
            await app.state.read_pool.close()
            await engine.dispose()

    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
        openapi_tags=openapi_tags,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.token_codec = TokenCodec(settings)
    app.state.cipher = PiiCipher(settings.secret("pii_key"), settings.secret("pii_hash_key"))
    install_error_handlers(app)
    app.include_router(health_router({"database": check_database, **(ready_checks or {})}))
    for router in routers:
        app.include_router(router)

    def openapi_document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.finish(
                FastAPI.openapi(app), idempotency_retention=_spoken(idempotency_retention)
            )
        return app.openapi_schema

    app.openapi = openapi_document  # type: ignore[method-assign]

    def principal_of(scope: Scope) -> str | None:
        """Whose Idempotency-Keys these are: the caller's identity *and* authority, so a
        stored response is never replayed to the same subject holding another role/scope."""
        try:
            p = principal_from_header(app.state.token_codec, header(scope, b"authorization"))
        except Unauthorized:
            return None  # the route answers 401 itself
        identity = "|".join(str(v) for v in (p.sub, p.role, p.region, p.org, p.staff, p.elder))
        return hashlib.sha256(identity.encode()).hexdigest()

    app.add_middleware(
        UnitOfWorkMiddleware,
        service=service,
        sessionmaker_of=lambda: app.state.sessionmaker,
        principal_of=principal_of,
        cipher_of=lambda: app.state.cipher,
        max_body_bytes=settings.max_body_bytes,
    )
    for fast_path in fast_paths:
        app.add_middleware(fast_path, state=app.state)
    app.add_middleware(ObservabilityMiddleware, service=service)
    return app
