from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class Device(Base):
    """A gateway or a sensor behind one. ``device_id`` is what the hardware calls itself."""

    __tablename__ = "devices"
    __table_args__ = {"schema": "registry"}

    id: Mapped[uuid.UUID] = pk_column()
    device_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    gateway_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    elder_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.elders.id"), nullable=False, index=True
    )
    bed_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.beds.id"), index=True
    )
    # Gateways only: MQTT username and a mosquitto-compatible PBKDF2-SHA512 hash ($7$),
    # so the broker's password file is generated straight from this table.
    mqtt_username: Mapped[str | None] = mapped_column(String(64), unique=True)
    mqtt_password_hash: Mapped[str | None] = mapped_column(String(256))
    # active | retired. A retired device keeps its row (and so its id: nobody else can
    # register it) and its history; nothing alerts for it any more.
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    created_at: Mapped[datetime] = created_at_column()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_by: Mapped[str | None] = mapped_column(String(128))
