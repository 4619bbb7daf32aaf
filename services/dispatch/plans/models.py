from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import Boolean, CheckConstraint, Date, Integer, String, Time
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class Plan(Base):
    """Recurring visits of a bed (an RFC 5545 RRULE, Asia/Shanghai wall clock), generated
    ahead into visits."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("duration_minutes BETWEEN 5 AND 720", name="duration"),
        {"schema": "dispatch"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    bed_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    station_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    staff_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # usual caregiver
    rrule: Mapped[str] = mapped_column(String(256), nullable=False)
    working_days_only: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    start_time: Mapped[time] = mapped_column(Time, nullable=False)
    duration_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    items: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    valid_to: Mapped[date | None] = mapped_column(Date)
    generated_until: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = created_at_column()
