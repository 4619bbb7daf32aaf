from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class CallbackSample(Base):
    """One quarter's sample for one region (all of it when ``region`` is empty)."""

    __tablename__ = "callback_samples"
    __table_args__ = (UniqueConstraint("quarter", "region"), {"schema": "subsidy"})

    id: Mapped[uuid.UUID] = pk_column()
    quarter: Mapped[str] = mapped_column(String(6), nullable=False)
    region: Mapped[str] = mapped_column(String(12), nullable=False)
    rate_pct: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    seed: Mapped[str] = mapped_column(String(32), nullable=False)
    population: Mapped[int] = mapped_column(Integer, nullable=False)
    drawn_by: Mapped[str] = mapped_column(String(128), nullable=False)
    drawn_at: Mapped[datetime] = created_at_column()


class CallbackItem(Base):
    """An elder paid in the quarter, in the seeded order; once drawn and called, the written
    record of the callback."""

    __tablename__ = "callback_items"
    __table_args__ = ({"schema": "subsidy"},)

    sample_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("subsidy.callback_samples.id", ondelete="CASCADE"),
        primary_key=True,
    )
    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    community: Mapped[str] = mapped_column(String(12), nullable=False)
    community_population: Mapped[int] = mapped_column(Integer, nullable=False)
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    # In the sample (the first ``required`` of the community, and replacements in order);
    # the rest of the quarter's paid elders are kept in their order for replacements.
    drawn: Mapped[bool] = mapped_column(Boolean, nullable=False)
    method: Mapped[str | None] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    done_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(String(128))
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
