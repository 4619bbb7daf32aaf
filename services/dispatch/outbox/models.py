from __future__ import annotations

from sqlalchemy import Index

from shared.db import Base
from shared.outbox import OutboxColumns


class OutboxMessage(OutboxColumns, Base):
    """A command to telemetry (resolve an alert, VISIT mode on/off), committed with the
    change that caused it; ``shared.outbox`` delivers it, so a telemetry outage delays it,
    never drops it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_dispatch_outbox_pending", "next_attempt_at", postgresql_where="delivered_at IS NULL"
        ),
        {"schema": "dispatch"},
    )
