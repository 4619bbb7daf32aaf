from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Float, String, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class OrgSettings(Base):
    """What an org sets for itself: its escalation chain (snapshotted onto each dispatch when
    it starts) and its GPS tolerance for check-ins."""

    __tablename__ = "org_settings"
    __table_args__ = {"schema": "dispatch"}

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    chain: Mapped[dict | None] = mapped_column(JSONB)
    gps_tolerance_m: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_by: Mapped[str | None] = mapped_column(String(128))
