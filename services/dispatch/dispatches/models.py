from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column

STATUSES = ("offered", "accepted", "declined", "escalated", "arrived", "resolved", "cancelled")


class Dispatch(Base):
    """The human response to one alert: its escalation chain (a snapshot), where it is in the
    chain, and the timer (``due_at``) of the step that waits."""

    __tablename__ = "dispatches"
    __table_args__ = (
        CheckConstraint(
            "status IN ('offered', 'accepted', 'declined', 'escalated', 'arrived', "
            "'resolved', 'cancelled')",
            name="status",
        ),
        Index("ix_dispatches_due", "due_at", postgresql_where="due_at IS NOT NULL"),
        Index("ix_dispatches_offered_staff", "staff_id", postgresql_where="status = 'offered'"),
        Index("ix_dispatches_org_raised", "org_id", "raised_at"),
        {"schema": "dispatch"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    alert_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, unique=True)
    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    received_at: Mapped[datetime] = created_at_column()
    bed_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    org_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    chain: Mapped[dict] = mapped_column(JSONB, nullable=False)  # snapshot at the start
    step_index: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    round: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    candidates: Mapped[list] = mapped_column(JSONB, nullable=False, default=list)
    next_candidate: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    staff_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    visit_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    offered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    declined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome_note: Mapped[str | None] = mapped_column(String(500))


class DispatchStep(Base):
    """Every step of a dispatch, timestamped (offered, timed_out, declined, accepted,
    notified_family, notified_community, advised_120, arrived, resolved, cancelled, …)."""

    __tablename__ = "dispatch_steps"
    __table_args__ = {"schema": "dispatch"}

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    dispatch_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("dispatch.dispatches.id"), nullable=False, index=True
    )
    at: Mapped[datetime] = created_at_column()
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    staff_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor: Mapped[str] = mapped_column(String(128), nullable=False, default="system")
    detail: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
