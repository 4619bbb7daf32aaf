from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

SCHEMA = "telemetry"


class IngestHealth(Base):
    """One row per ingest process: whether it can store, kept fresh by the process itself
    (``services/telemetry/ingest/health.py``) and read by the telemetry API's ``/readyz``."""

    __tablename__ = "ingest_health"
    __table_args__ = {"schema": SCHEMA}

    worker: Mapped[str] = mapped_column(String(160), primary_key=True)
    storing: Mapped[bool] = mapped_column(Boolean, nullable=False)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
