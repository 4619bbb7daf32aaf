"""Alembic environment: async engine from ELDERCARE_DATABASE_URL, every service's metadata."""

from __future__ import annotations

import asyncio
import re

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

SCHEMAS = ("common", "registry", "subsidy", "dispatch", "telemetry")
target_metadata = Base.metadata


def _url() -> str:
    url = context.config.attributes.get("database_url") or get_settings().database_url
    if not url:
        raise RuntimeError("set ELDERCARE_DATABASE_URL")
    return url


PARTITION = re.compile(r"^events_(default|\d{4}_\d{2})$")  # made at run time, not by Alembic


def _include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    if type_ == "schema":
        return name in SCHEMAS
    return not (type_ in ("table", "index") and name and PARTITION.match(name))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_schemas=True,
        include_name=_include_name,
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
