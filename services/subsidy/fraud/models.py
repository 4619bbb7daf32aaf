from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class FraudFlag(Base):
    """篇七 管理监督: fraud found against an elder (lifetime disqualification) or an
    organisation (no longer serves or settles); what must be repaid is a receivable."""

    __tablename__ = "fraud_flags"
    __table_args__ = (
        CheckConstraint(
            "(subject = 'elder' AND elder_id IS NOT NULL AND org_id IS NULL) OR "
            "(subject = 'org' AND org_id IS NOT NULL AND elder_id IS NULL)",
            name="subject",
        ),
        {"schema": "subsidy"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    subject: Mapped[str] = mapped_column(String(8), nullable=False)
    elder_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    org_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    reason: Mapped[str] = mapped_column(String(512), nullable=False)
    found_on: Mapped[date] = mapped_column(Date, nullable=False)
    effective_from: Mapped[date] = mapped_column(Date, nullable=False)
    repay_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    fund: Mapped[str | None] = mapped_column(String(64))
    posting_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_by: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
