"""Alembic environment: async engine from ELDERCARE_DATABASE_URL, every service's metadata."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import services.dispatch.models
import services.registry.models
import services.subsidy.models
import services.telemetry.models  # noqa: F401
import shared.audit
import shared.calendar
import shared.idempotency  # noqa: F401
from shared.config import get_settings
from shared.db import Base, create_engine
from shared.migrate import SCHEMAS, include_name

target_metadata = Base.metadata


def _url() -> str:
    url = context.config.attributes.get("database_url") or get_settings().database_url
    if not url:
        raise RuntimeError("set ELDERCARE_DATABASE_URL")
    return url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_schemas=True,
        include_name=include_name,
        version_table_schema="common",
        compare_type=True,
    )
    with context.begin_transaction():
        for schema in SCHEMAS:
            connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url(), pool_size=1, max_overflow=0)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        include_schemas=True,
        version_table_schema="common",
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
