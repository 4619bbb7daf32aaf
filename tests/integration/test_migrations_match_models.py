"""The migrated database is what the models say: a column, index or constraint added to a
model without its migration (or the other way round) fails here, not in production."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import services.dispatch.models
import services.registry.models
import services.subsidy.models
import services.telemetry.models  # noqa: F401
import shared.audit
import shared.calendar
import shared.idempotency  # noqa: F401
from shared.db import Base, create_engine
from shared.migrate import include_name


async def test_migrations_match_the_models(database_url):
    engine = create_engine(database_url, pool_size=1, max_overflow=0)

    def diff(connection):
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": include_name,
                "compare_type": True,
                "version_table_schema": "common",
            },
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reflection does not know xid8; the model does
            return compare_metadata(context, Base.metadata)

    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == []
