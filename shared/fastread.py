"""Hot-path reads on a raw asyncpg pool, with SQL still written once as SQLAlchemy Core.

A request through the ORM session costs ~3× a raw asyncpg query in CPU (pool adapter,
greenlet hop, result processing, BEGIN/COMMIT). For the few reads that dominate traffic,
``Query`` compiles the service's own SQLAlchemy statement once per *shape* (e.g. per role)
and runs it on asyncpg directly; values travel as named bind parameters. One definition of
the query — and of its scoping — serves both paths.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.sql import Executable

_DIALECT = PGDialect_asyncpg(paramstyle="numeric_dollar")


class Query:
    """A statement builder whose compiled SQL is cached per shape key."""

    def __init__(self, build: Callable[[Hashable], Executable]) -> None:
        self._build = build
        self._compiled: dict[Hashable, tuple[str, tuple[str, ...], dict[str, Any]]] = {}

    def sql(self, shape: Hashable) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        """SQL text, positional parameter names, and the statement's own constant values."""
        hit = self._compiled.get(shape)
        if hit is None:
            compiled = self._build(shape).compile(dialect=_DIALECT)
            names = tuple(compiled.positiontup or ())
            hit = self._compiled[shape] = (str(compiled), names, dict(compiled.params))
        return hit

    async def fetchrow(
        self, pool: asyncpg.Pool, shape: Hashable, params: Mapping[str, Any]
    ) -> asyncpg.Record | None:
        sql, names, constants = self.sql(shape)
        values = {**constants, **params}
        return await pool.fetchrow(sql, *(values[n] for n in names))


async def _keep(connection: asyncpg.Connection) -> None:
    """No reset on release: this pool only runs single read statements outside transactions,
    so there is no session state to clear, and the default reset costs a round trip."""


async def create_pool(dsn: str, *, size: int) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=1, max_size=size, reset=_keep, server_settings={"timezone": "UTC"}
    )
