"""Stored responses of POSTs made with an ``Idempotency-Key`` (``common.idempotency_keys``).

The key row is inserted in the same transaction as the request's own writes. A concurrent
retry with the same key blocks on the primary key until the first attempt commits, then
replays its stored response; if the first attempt failed, its row vanished with its rollback
and the retry runs for real. So a handset that retries on a flaky network never creates
twice, and a failure is never "remembered".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import DateTime, Integer, LargeBinary, String, delete, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = {"schema": "common"}

    service: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal: Mapped[str] = mapped_column(String(128), primary_key=True)  # sha256 hex
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[list[list[str]] | None] = mapped_column(JSONB)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


_CLAIM = text(
    "INSERT INTO common.idempotency_keys (service, principal, key, fingerprint) "
    "VALUES (:service, :principal, :key, :fingerprint) ON CONFLICT DO NOTHING RETURNING 1"
)


async def claim(
    session: AsyncSession, *, service: str, principal: str, key: str, fingerprint: bytes
) -> IdempotencyRecord | None:
    """Claim ``key`` for this request. None: ours, go ahead. A record: an earlier attempt's."""
    claimed = await session.execute(
        _CLAIM,
        {"service": service, "principal": principal, "key": key, "fingerprint": fingerprint},
    )
    if claimed.scalar() is not None:
        return None
    return await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.service == service,
            IdempotencyRecord.principal == principal,
            IdempotencyRecord.key == key,
        )
    )


async def store(
    session: AsyncSession,
    *,
    service: str,
    principal: str,
    key: str,
    status: int,
    headers: list[list[str]],
    body: bytes,
) -> None:
    record = await session.get(IdempotencyRecord, (service, principal, key))
    assert record is not None, "store() without claim()"
    record.status, record.headers, record.body = status, headers, body
    await session.flush()


async def purge_expired(
    session: AsyncSession,
    *,
    service: str,
    retention: timedelta = RETENTION,
    now: datetime | None = None,
) -> int:
    """Forget ``service``'s keys older than ``retention`` (each service keeps its own: a
    caregiver's handset may replay a check-out after days offline)."""
    cutoff = (now or datetime.now().astimezone()) - retention
    result = await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.service == service, IdempotencyRecord.created_at < cutoff
        )
    )
    return result.rowcount or 0
