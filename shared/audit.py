"""Audit log of reads of clear PII and of sensitive changes (``common.audit_log``).

Rows are written in the request's own transaction: a read that is not audited is not served.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, insert
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.auth import Principal
from shared.db import Base, created_at_column, pk_column
from shared.observability import request_id_var


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = {"schema": "common"}

    id: Mapped[uuid.UUID] = pk_column()
    at: Mapped[datetime] = created_at_column()
    service: Mapped[str] = mapped_column(String(32))
    actor_sub: Mapped[str] = mapped_column(String(128), index=True)
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    fields: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    request_id: Mapped[str | None] = mapped_column(String(64))


async def record(
    session: AsyncSession,
    *,
    service: str,
    principal: Principal,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID,
    fields: list[str] | None = None,
) -> None:
    await session.execute(
        insert(AuditEntry).values(
            service=service,
            actor_sub=principal.sub,
            actor_role=principal.role.value,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            fields=fields or [],
            request_id=request_id_var.get(),
        )
    )
