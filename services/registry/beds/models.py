from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column

OPEN_STATUSES = ("applied", "active", "suspended")


class Bed(Base):
    """A home care bed (家庭养老床位): applied → active → suspended → terminated."""

    __tablename__ = "beds"
    __table_args__ = (
        # The real guard against two open beds for one elder, whatever races the API sees.
        Index(
            "uq_beds_one_open_per_elder",
            "elder_id",
            unique=True,
            postgresql_where=text("status IN ('applied', 'active', 'suspended')"),
        ),
        CheckConstraint(
            "status IN ('applied', 'active', 'suspended', 'terminated')", name="status"
        ),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    elder_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.elders.id"), nullable=False, index=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.orgs.id"), nullable=False, index=True
    )
    station_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.stations.id"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    policy_code: Mapped[str] = mapped_column(String(64), nullable=False)
    applied_on: Mapped[date] = mapped_column(Date, nullable=False)
    started_on: Mapped[date | None] = mapped_column(Date)
    suspended_on: Mapped[date | None] = mapped_column(Date)
    terminated_on: Mapped[date | None] = mapped_column(Date)
    termination_reason: Mapped[str | None] = mapped_column(String(256))
    # Why a start date far in the past was recorded (see services/registry/backdating.py).
    backdate_reason: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = created_at_column()


class BedEvent(Base):
    """Every lifecycle step with its effective date and who took it (subsidy months use it)."""

    __tablename__ = "bed_events"
    __table_args__ = {"schema": "registry"}

    id: Mapped[uuid.UUID] = pk_column()
    bed_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.beds.id"), nullable=False, index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16), nullable=False)
    effective_on: Mapped[date] = mapped_column(Date, nullable=False)
    reason: Mapped[str | None] = mapped_column(String(256))
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class Modification(Base):
    """Aging-adaptation (适老化) or smart-device (智能化) work done for a bed."""

    __tablename__ = "modifications"
    __table_args__ = (
        CheckConstraint("cost_fen >= 0", name="cost_nonnegative"),
        CheckConstraint("warranty_until >= done_on + 365", name="warranty_one_year"),
        {"schema": "registry"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    bed_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.beds.id"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    item: Mapped[str] = mapped_column(String(128), nullable=False)
    cost_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    done_on: Mapped[date] = mapped_column(Date, nullable=False)
    warranty_until: Mapped[date] = mapped_column(Date, nullable=False)
    vendor: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = created_at_column()
