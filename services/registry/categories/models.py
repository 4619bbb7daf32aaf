from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, SmallInteger, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class Category(Base):
    """A welfare category an elder belongs to over a period (特困, 低保, 残疾 …)."""

    __tablename__ = "categories"
    __table_args__ = (
        Index("ix_categories_elder_code", "elder_id", "code"),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    elder_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.elders.id"), nullable=False
    )
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    valid_to: Mapped[date | None] = mapped_column(Date)
    grade: Mapped[int | None] = mapped_column(SmallInteger)
    receives_nursing_subsidy: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    evidence_ref: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = created_at_column()
