from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class Reward(Base):
    """A one-time reward granted to an organisation (篇一 以奖代补): once per policy."""

    __tablename__ = "rewards"
    __table_args__ = (UniqueConstraint("org_id", "policy_code"), {"schema": "subsidy"})

    id: Mapped[uuid.UUID] = pk_column()
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    policy_code: Mapped[str] = mapped_column(String(64), nullable=False)
    tier: Mapped[str] = mapped_column(String(64), nullable=False)
    as_of: Mapped[date] = mapped_column(Date, nullable=False)
    operating_beds: Mapped[int] = mapped_column(Integer, nullable=False)
    satisfaction_pct: Mapped[int] = mapped_column(Integer, nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fund: Mapped[str] = mapped_column(String(64), nullable=False)
    posting_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_by: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
