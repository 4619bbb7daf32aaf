from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal, get_args

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column

# Accounts, by kind. Money flows fund → allowance (an elder's vouchers) → org_payable (an
# organisation is owed) → disbursed (paid out at settlement); direct subsidies go fund →
# org_payable. self_pay is the elder's co-payment. receivable/recoveries record amounts to be
# repaid after fraud. Each entry is signed; every posting's entries sum to zero.
Account = Literal[
    "fund", "allowance", "org_payable", "disbursed", "self_pay", "receivable", "recoveries"
]
ACCOUNTS: tuple[str, ...] = get_args(Account)
# What a posting is (``Draft.kind``): every kind a service writes is listed here.
PostingKind = Literal[
    "entitlement",
    "reversal",
    "reward",
    "fraud_receivable",
    "repayment",
    "redemption",
    "lapse",
    "settlement",
]


class LedgerPeriod(Base):
    """An accounting month; once closed, the database refuses every write to it."""

    __tablename__ = "ledger_periods"
    __table_args__ = {"schema": "subsidy"}

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(128))


class Posting(Base):
    """One balanced movement of money. Append-only (a trigger refuses UPDATE and DELETE);
    a correction is a reversal posting that names the one it reverses."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        UniqueConstraint("id", "period"),
        Index("ix_ledger_postings_reverses", "reverses", unique=True),
        {"schema": "subsidy"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    period: Mapped[date] = mapped_column(Date, nullable=False)
    entitlement_month: Mapped[date | None] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reverses: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    elder_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    org_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    policy_code: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(64))
    memo: Mapped[str | None] = mapped_column(String(256))
    created_by: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class Entry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["posting_id", "period"],
            ["subsidy.ledger_postings.id", "subsidy.ledger_postings.period"],
        ),
        CheckConstraint(f"account IN {ACCOUNTS}", name="account"),
        Index("ix_ledger_entries_posting", "posting_id"),
        Index("ix_ledger_entries_elder", "elder_id", postgresql_where="elder_id IS NOT NULL"),
        Index("ix_ledger_entries_org", "org_id", postgresql_where="org_id IS NOT NULL"),
        Index("ix_ledger_entries_account_fund", "account", "fund"),
        {"schema": "subsidy"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    posting_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    period: Mapped[date] = mapped_column(Date, nullable=False)
    account: Mapped[str] = mapped_column(String(16), nullable=False)
    fund: Mapped[str] = mapped_column(String(64), nullable=False)
    elder_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    org_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
