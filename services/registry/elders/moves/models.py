from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class ResidenceRecord(Base):
    """Where an elder's hukou and residence were from ``valid_from`` on, until the next row.

    The first row (``kind = registered``) is what the elder was registered with and holds from
    their birth date: before any recorded move, the registry knows no other place. Every move
    adds a row; the elder's current columns are the row in force today."""

    __tablename__ = "residence_history"
    __table_args__ = (
        # one place per day: a second move on the same day is a conflict, not a race
        UniqueConstraint("elder_id", "valid_from", name="uq_residence_history_elder_day"),
        # subsidy's facts loader asks "who moved after day X" for a whole district at once
        Index(
            "ix_residence_history_moves",
            "valid_from",
            postgresql_where=text("kind = 'move'"),
        ),
        CheckConstraint("kind IN ('registered', 'move')", name="kind"),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    elder_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.elders.id"), nullable=False
    )
    hukou_region: Mapped[str] = mapped_column(String(12), nullable=False)
    residence_region: Mapped[str] = mapped_column(String(12), nullable=False)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # registered | move
    reason: Mapped[str | None] = mapped_column(String(256))
    recorded_by: Mapped[str] = mapped_column(String(128), nullable=False)
    recorded_at: Mapped[datetime] = created_at_column()
