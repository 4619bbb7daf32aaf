from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from shared.db import Base, created_at_column, pk_column

ACTIVE = ("open", "acknowledged", "dispatched")


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (asyncpg reads it as an int)."""

    cache_ok = True

    def get_col_spec(self, **_: object) -> str:
        return "xid8"


class Alert(Base):
    """open → acknowledged → dispatched → resolved | false_alarm, every step timed and signed."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "ix_alerts_active_dedup",
            "dedup_key",
            postgresql_where="status IN ('open', 'acknowledged', 'dispatched')",
        ),
        Index("ix_alerts_status_raised", "status", "raised_at"),
        # "Has this silence been alerted already?" looks at closed alerts of the key too.
        Index("ix_alerts_dedup_first_event", "dedup_key", "first_event_at"),
        {"schema": "telemetry"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    elder_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    gateway_id: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    severity: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    dedup_key: Mapped[str] = mapped_column(String(160), nullable=False)
    occurrences: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    first_event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    raised_at: Mapped[datetime] = created_at_column()
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    escalation_level: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last step of the severity's chain was taken: nobody is re-notified any more.
    escalation_exhausted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    value: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)


class AlertLog(Base):
    """Every step of every alert: the audit trail and the SSE stream's source.

    ``seq`` orders the steps of one alert (taken at insert); ``pos`` is the feed's position,
    taken at commit in commit order by one sequencer (migration 0030), so a row that commits
    late can never land behind a position a client already passed (see ``stream.py``).
    ``xid`` is the writing transaction, kept to resume the ``<xid>-<seq>`` tokens the feed
    gave out before ``pos``."""

    __tablename__ = "alert_log"
    __table_args__ = (
        Index("ix_alert_log_xid_seq", "xid", "seq"),
        Index("ix_alert_log_pos", "pos", unique=True),
        Index("ix_alert_log_at", "at"),
        {"schema": "telemetry"},
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    xid: Mapped[int] = mapped_column(
        Xid8(), nullable=False, server_default=text("pg_current_xact_id()")
    )
    # NULL only inside the writing transaction: its commit sets it.
    pos: Mapped[int | None] = mapped_column(BigInteger)
    alert_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    at: Mapped[datetime] = created_at_column()
    elder_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    snapshot: Mapped[dict] = mapped_column(JSONB, nullable=False)
    # Escalation steps: {"step", "of", "notify", "final"}.
    detail: Mapped[dict | None] = mapped_column(JSONB)


class VitalBreach(Base):
    """Out-of-threshold readings, kept so duration/repeat conditions hold across ingest
    replicas (a shared subscription spreads one home's readings over all of them)."""

    __tablename__ = "vital_breaches"
    __table_args__ = (
        Index("ix_vital_breaches_elder_metric_at", "elder_id", "metric", "at"),
        {"schema": "telemetry"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    metric: Mapped[str] = mapped_column(String(16), nullable=False)
    severity: Mapped[str] = mapped_column(String(16), nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
