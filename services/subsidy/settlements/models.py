from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class Settlement(Base):
    """A quarter's settlement with one organisation (按季度结算): what it is owed from verified
    visits and direct subsidies, paid out in one posting."""

    __tablename__ = "settlements"
    __table_args__ = (UniqueConstraint("org_id", "quarter"), {"schema": "subsidy"})

    id: Mapped[uuid.UUID] = pk_column()
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    quarter: Mapped[str] = mapped_column(String(7), nullable=False)  # 2025Q1
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    period_end: Mapped[date] = mapped_column(Date, nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    by_fund: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    posting_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_by: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
