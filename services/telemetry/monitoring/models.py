from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class ElderSettings(Base):
    """Per-elder overrides: vital thresholds and the home's daily schedule."""

    __tablename__ = "elder_settings"
    __table_args__ = {"schema": "telemetry"}

    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    thresholds: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    schedule: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)


class VisitMode(Base):
    """A caregiver is checked in at the home (VISIT mode): behaviour alerts are suppressed.

    Set by dispatch at check-in/check-out (``PUT /v1/elders/{id}/visit-mode``)."""

    __tablename__ = "visit_mode"
    __table_args__ = {"schema": "telemetry"}

    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    staff_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    visit_ref: Mapped[str | None] = mapped_column(String(64))
