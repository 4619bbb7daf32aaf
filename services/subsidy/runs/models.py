from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class Run(Base):
    """A monthly run: every elder in scope evaluated as one batch, written in one transaction."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_month", "month"), {"schema": "subsidy"})

    id: Mapped[uuid.UUID] = pk_column()
    month: Mapped[date] = mapped_column(Date, nullable=False)
    region: Mapped[str | None] = mapped_column(String(12))  # the requester's scope
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    requested_by: Mapped[str] = mapped_column(String(128), nullable=False)
    elders_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    elders_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    decisions_written: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    decisions_unchanged: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    postings: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    reversals: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    total_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    notes: Mapped[list[str]] = mapped_column(JSONB, nullable=False, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Decision(Base):
    """The decision record of one elder under one policy for one month: the frozen facts,
    the policy version (hash), every rule's verdict and the combination applied. Never
    updated; a later run that finds other facts writes a new one."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_elder_month", "elder_id", "month"),
        Index("ix_decisions_run", "run_id"),
        {"schema": "subsidy"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("subsidy.runs.id")
    )
    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    month: Mapped[date] = mapped_column(Date, nullable=False)
    policy_code: Mapped[str] = mapped_column(String(64), nullable=False)
    policy_version: Mapped[int] = mapped_column(Integer, nullable=False)
    policy_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    facts_hash: Mapped[str] = mapped_column(String(32), nullable=False)
    verdicts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    total_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class CurrentDecision(Base):
    """Which decision is in force for (elder, policy, month) — what a re-run compares with."""

    __tablename__ = "current_decisions"
    __table_args__ = {"schema": "subsidy"}

    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    policy_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    decision_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    policy_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    facts_hash: Mapped[str] = mapped_column(String(32), nullable=False)
    total_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)


class DecisionLine(Base):
    """One granted line (one part per payee) of a decision; its ledger posting pays it."""

    __tablename__ = "decision_lines"
    __table_args__ = (
        Index("ix_decision_lines_decision", "decision_id"),
        Index("ix_decision_lines_elder_rule", "elder_id", "policy_code", "rule", "month"),
        Index(
            "ix_decision_lines_month_elder",
            "month",
            "elder_id",
            postgresql_where=text("reversed_by IS NULL"),
        ),
        {"schema": "subsidy"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    decision_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("subsidy.decisions.id"), nullable=False
    )
    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    month: Mapped[date] = mapped_column(Date, nullable=False)
    policy_code: Mapped[str] = mapped_column(String(64), nullable=False)
    rule: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    pay_to: Mapped[str] = mapped_column(String(16), nullable=False)
    fund: Mapped[str] = mapped_column(String(64), nullable=False)
    org_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    days: Mapped[int] = mapped_column(Integer, nullable=False)
    combination: Mapped[str | None] = mapped_column(String(128))
    posting_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reversed_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
