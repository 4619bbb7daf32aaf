from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ARRAY, Date, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class PolicyDocument(Base):
    """Every policy text ever used, by content hash: a decision names the hash it was
    computed under, so its explanation can be rendered again years later."""

    __tablename__ = "policy_documents"
    __table_args__ = {"schema": "subsidy"}

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class PolicyVersion(Base):
    """One version of a policy: bundled from ``shared/policies`` or posted by an admin."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("code", "version"), {"schema": "subsidy"})

    id: Mapped[uuid.UUID] = pk_column()
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(256), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # active | draft
    regions: Mapped[list[str]] = mapped_column(ARRAY(String(12)), nullable=False)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    valid_to: Mapped[date | None] = mapped_column(Date)
    hash: Mapped[str] = mapped_column(
        String(64), ForeignKey("subsidy.policy_documents.hash"), nullable=False
    )
    source: Mapped[str] = mapped_column(String(16), nullable=False)  # bundled | api
    created_by: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
