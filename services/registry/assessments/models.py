from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, SmallInteger, String
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class Assessment(Base):
    """One capability assessment; history is kept, the latest ``assessed_on`` wins."""

    __tablename__ = "assessments"
    __table_args__ = (
        Index("ix_assessments_elder_latest", "elder_id", "assessed_on", "created_at"),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    elder_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.elders.id"), nullable=False
    )
    source: Mapped[str] = mapped_column(String(16), nullable=False)  # scores | third_party
    scores: Mapped[dict[str, int] | None] = mapped_column(JSONB)
    total: Mapped[int | None] = mapped_column(SmallInteger)
    base_level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    adjustments: Mapped[list[str]] = mapped_column(JSONB, nullable=False, default=list)
    dementia: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    coma: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    care_risk_events_30d: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    assessed_on: Mapped[date] = mapped_column(Date, nullable=False)
    valid_until: Mapped[date] = mapped_column(Date, nullable=False)
    assessor: Mapped[str] = mapped_column(String(128), nullable=False)
    report_ref: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = created_at_column()
