from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class Benefit(Base):
    """A subsidy an elder received outside this platform that a rule counts against its cap
    (e.g. an earlier 居家适老化改造补助, 篇一（三）1)."""

    __tablename__ = "benefits"
    __table_args__ = (CheckConstraint("amount_fen >= 0", name="nonnegative"), {"schema": "subsidy"})

    id: Mapped[uuid.UUID] = pk_column()
    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    received_on: Mapped[date] = mapped_column(Date, nullable=False)
    reference: Mapped[str | None] = mapped_column(String(256))
    recorded_by: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
