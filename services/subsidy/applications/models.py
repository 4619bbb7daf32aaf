from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, String
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class Application(Base):
    """An application for a subsidy (篇七 申请/审批): community first review within 10 working
    days (incl. 公示), street review within 5, district decision within 10, in writing, with
    reasons when refused. The smallest version that rules can depend on."""

    __tablename__ = "applications"
    __table_args__ = {"schema": "subsidy"}

    id: Mapped[uuid.UUID] = pk_column()
    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    policy_code: Mapped[str] = mapped_column(String(64), nullable=False)
    basis: Mapped[str | None] = mapped_column(String(64))  # the checklist it is filed under
    documents: Mapped[list[str]] = mapped_column(JSONB, nullable=False, default=list)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    stage: Mapped[str] = mapped_column(String(16), nullable=False)  # community|street|district|done
    submitted_on: Mapped[date] = mapped_column(Date, nullable=False)
    due_on: Mapped[date] = mapped_column(Date, nullable=False)  # of the current stage
    decided_on: Mapped[date | None] = mapped_column(Date)
    reasons: Mapped[list[str]] = mapped_column(JSONB, nullable=False, default=list)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, default=list)
    created_by: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
