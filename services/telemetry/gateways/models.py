from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    SmallInteger,
    String,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

SCHEMA = "telemetry"


class Gateway(Base):
    """Online/offline from the retained status topic and the MQTT last will."""

    __tablename__ = "gateways"
    __table_args__ = {"schema": SCHEMA}

    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean, nullable=False)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class DeviceState(Base):
    """Last known state per device, kept by the ingest for the monitor's time-based rules."""

    __tablename__ = "device_state"
    __table_args__ = {"schema": SCHEMA}

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    elder_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    battery: Mapped[int | None] = mapped_column(SmallInteger)
    last_motion_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bed_state: Mapped[str | None] = mapped_column(String(8))
    bed_state_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clock_skewed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
