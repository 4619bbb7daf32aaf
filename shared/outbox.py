"""The transactional outbox, once for every service that commands another.

A command to another service (telemetry → dispatch: an emergency's hand-off, a false
alarm's cancel; dispatch → telemetry: resolve an alert, VISIT mode on/off) is a row
committed in the same transaction as the change that caused it. A relay delivers it at
least once, with the row's ``Idempotency-Key`` and a ``service`` token, so a receiver outage
delays a command but never drops or doubles it.

Each service keeps its rows in its own schema (a service writes only its own): the table's
columns are ``OutboxColumns``; ``Outbox(table)`` holds the SQL that leases due rows (pushing
their next attempt past a lease, so the HTTP calls run outside any transaction and a relay
that dies mid-delivery just lets the lease expire) and settles a whole batch in one
statement, each failed row rescheduled with its own exponential backoff; ``Sender`` makes
the calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import httpx
from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.auth import Role, TokenCodec
from shared.config import Settings
from shared.db import created_at_column

MAX_BACKOFF_S = 60.0
LEASE_S = 30.0
BATCH = 20


class OutboxColumns:
    """The columns of every service's ``<schema>.outbox`` table (a declarative mixin)."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(32), nullable=False)
    method: Mapped[str] = mapped_column(String(8), nullable=False, default="POST")
    path: Mapped[str] = mapped_column(String(256), nullable=False)
    body: Mapped[dict] = mapped_column(JSONB, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    created_at: Mapped[datetime] = created_at_column()
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = created_at_column()
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class Outbox:
    """The lease-and-settle SQL of one outbox table (``telemetry.outbox``, ``dispatch.outbox``);
    ``extra`` names further columns the relay needs back (e.g. ``alert_id``)."""

    def __init__(self, table: str, *, extra: Sequence[str] = (), batch: int = BATCH) -> None:
        self.batch = batch
        columns = ", ".join(
            ["id", *extra, "target", "method", "path", "body", "idempotency_key", "attempts"]
        )
        self._lease = f"""
UPDATE {table} SET next_attempt_at = now() + make_interval(secs => $1)
WHERE id IN (
    SELECT id FROM {table}
    WHERE delivered_at IS NULL AND next_attempt_at <= now()
    ORDER BY id LIMIT {batch} FOR UPDATE SKIP LOCKED
)
RETURNING {columns}
"""
        self._settle = f"""
UPDATE {table} AS o SET
    attempts = o.attempts + 1,
    delivered_at = CASE WHEN r.error IS NULL THEN now() END,
    last_error = r.error,
    next_attempt_at = CASE WHEN r.error IS NULL THEN o.next_attempt_at
        ELSE now() + make_interval(secs => least(0.2 * power(2, o.attempts), $3)) END
FROM unnest($1::bigint[], $2::text[]) AS r(id, error)
WHERE o.id = r.id
"""

    async def lease(self, db: asyncpg.Pool | asyncpg.Connection) -> list[asyncpg.Record]:
        """Claim up to a batch of due rows (one statement: atomic without a transaction)."""
        return await db.fetch(self._lease, LEASE_S)

    async def settle(
        self,
        db: asyncpg.Pool | asyncpg.Connection,
        rows: Sequence[Any],
        errors: Sequence[str | None],
    ) -> None:
        """Delivered rows stamped, failed ones rescheduled (0.2 s doubling, capped)."""
        await db.execute(self._settle, [r["id"] for r in rows], list(errors), MAX_BACKOFF_S)


Accept = Callable[[Any, httpx.Response], bool]


def two_xx(row: Any, response: httpx.Response) -> bool:
    """Only a 2xx counts: the receiver is idempotent on the key, so a repeat answers 2xx
    too, and anything else is retried."""
    return 200 <= response.status_code < 300


class Sender:
    """Makes the HTTP call a row describes, as the ``service`` role ``sub``."""

    def __init__(
        self,
        settings: Settings,
        *,
        sub: str,
        accept: Accept = two_xx,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.accept = accept
        token = TokenCodec(settings).issue(role=Role.service, sub=sub, ttl=365 * 24 * 3600)
        self.client = httpx.AsyncClient(
            timeout=5.0, transport=transport, headers={"Authorization": f"Bearer {token}"}
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def send(self, row: Any) -> str | None:
        """None when delivered; the error otherwise (kept in ``last_error``, never logged: a
        receiver's answer may quote the body)."""
        url = self.settings.service_url(row["target"]) + row["path"]
        try:
            response = await self.client.request(
                row["method"],
                url,
                content=row["body"],
                headers={
                    "Idempotency-Key": row["idempotency_key"],
                    "Content-Type": "application/json",
                },
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        if self.accept(row, response):
            return None
        return f"HTTP {response.status_code}: {response.text[:300]}"
