from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column

STATUSES = ("planned", "checked_in", "checked_out", "cancelled")


class Visit(Base):
    """A home visit with its electronic visit verification: service type (items), recipient
    (elder/bed), date, location (GPS at both ends), provider (staff), begin and end time."""

    __tablename__ = "visits"
    __table_args__ = (
        CheckConstraint(
            "status IN ('planned', 'checked_in', 'checked_out', 'cancelled')", name="status"
        ),
        CheckConstraint("kind IN ('planned', 'adhoc', 'emergency')", name="kind"),
        CheckConstraint("planned_end > planned_start", name="planned_order"),
        # a plan generates each occurrence once, however often the generator runs
        UniqueConstraint("plan_id", "planned_start", name="uq_visits_plan_occurrence"),
        UniqueConstraint("org_id", "client_ref", name="uq_visits_client_ref"),
        Index("ix_visits_staff_day", "staff_id", "planned_start"),
        # a caregiver's fixes by time: where a responder was last seen, the previous check-out
        Index(
            "ix_visits_staff_check_in",
            "staff_id",
            "check_in_at",
            postgresql_where="check_in_at IS NOT NULL",
        ),
        Index(
            "ix_visits_staff_check_out",
            "staff_id",
            "check_out_at",
            postgresql_where="check_out_at IS NOT NULL",
        ),
        Index("ix_visits_org_day", "org_id", "planned_start"),
        Index("ix_visits_bed_day", "bed_id", "service_day"),
        {"schema": "dispatch"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    bed_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    station_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    staff_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    plan_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("dispatch.plans.id")
    )
    dispatch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    client_ref: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="adhoc")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="planned")
    planned_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    planned_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    items: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False, default=list)
    # the route the assignment gave it
    route_seq: Mapped[int | None] = mapped_column(Integer)
    eta: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # EVV: begin
    check_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    check_in_received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    check_in_lat: Mapped[float | None] = mapped_column(Float)
    check_in_lon: Mapped[float | None] = mapped_column(Float)
    check_in_distance_m: Mapped[float | None] = mapped_column(Float)
    alternate_reason: Mapped[str | None] = mapped_column(String(200))
    # EVV: end
    check_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    check_out_received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    check_out_lat: Mapped[float | None] = mapped_column(Float)
    check_out_lon: Mapped[float | None] = mapped_column(Float)
    check_out_distance_m: Mapped[float | None] = mapped_column(Float)
    items_done: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    late: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # the day in Asia/Shanghai the visit began (compliance buckets)
    service_day: Mapped[date | None] = mapped_column(Date)
    minutes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()


class VisitFlag(Base):
    """An anomaly on a visit. Never a silent rejection: the visit is kept, and it counts
    toward compliance (and is payable) only once every flag is cleared by a supervisor."""

    __tablename__ = "visit_flags"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'cleared', 'confirmed')", name="status"),
        UniqueConstraint("visit_id", "code", name="uq_visit_flags_visit_code"),
        {"schema": "dispatch"},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    visit_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("dispatch.visits.id"), nullable=False, index=True
    )
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    detail: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    raised_at: Mapped[datetime] = created_at_column()
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(String(128))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    review_note: Mapped[str | None] = mapped_column(String(500))
