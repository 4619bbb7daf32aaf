from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    DateTime,
    Index,
    Integer,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

SCHEMA = "telemetry"


class Event(Base):
    """Every accepted event, partitioned by month of arrival (see ``partitions.py``).

    Device time and arrival time are both kept: devices buffer and resend, and their clocks
    drift; ``skew_s`` is device minus arrival time, in seconds.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_elder_event_ts", "elder_id", "event", "device_ts"),
        Index("ix_events_device_received", "device_id", "received_at"),
        {"schema": SCHEMA, "postgresql_partition_by": "RANGE (received_at)"},
    )

    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    gateway_id: Mapped[str] = mapped_column(String(64), nullable=False)
    elder_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    event: Mapped[str] = mapped_column(String(16), nullable=False)
    skew_s: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    data: Mapped[dict] = mapped_column(JSONB, nullable=False)


class Seen(Base):
    """(device, msg_id) pairs already stored: QoS 1 redeliveries and gateway resends end here.

    Kept apart from ``events`` because a unique key on a time-partitioned table must include
    the partition key, and a redelivery arrives at another time. Pruned after the dedup window.
    """

    __tablename__ = "seen"
    __table_args__ = {"schema": SCHEMA}

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), index=True
    )
