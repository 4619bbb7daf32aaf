from __future__ import annotations

import uuid

from sqlalchemy import Index
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base
from shared.outbox import OutboxColumns


class OutboxMessage(OutboxColumns, Base):
    """A command to dispatch (an emergency's hand-off, a false alarm's cancel), committed
    with the alert that caused it; ``shared.outbox`` delivers it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "next_attempt_at", postgresql_where="delivered_at IS NULL"),
        {"schema": "telemetry"},
    )

    alert_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
