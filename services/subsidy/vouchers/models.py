from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, DateTime, Index, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class Voucher(Base):
    """A month's service vouchers (消费券) of one elder under one policy: spendable only on
    home-care services at approved organisations, until ``redeemable_until``."""

    __tablename__ = "vouchers"
    __table_args__ = (
        UniqueConstraint("elder_id", "policy_code", "month", "fund"),
        CheckConstraint("redeemed_fen >= 0 AND lapsed_fen >= 0", name="nonnegative"),
        {"schema": "subsidy"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    policy_code: Mapped[str] = mapped_column(String(64), nullable=False)
    month: Mapped[date] = mapped_column(Date, nullable=False)
    fund: Mapped[str] = mapped_column(String(64), nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    redeemed_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    lapsed_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    redeemable_until: Mapped[date] = mapped_column(Date, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VoucherOrg(Base):
    """An organisation approved to take a policy's vouchers (定点服务机构)."""

    __tablename__ = "voucher_orgs"
    __table_args__ = {"schema": "subsidy"}

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    policy_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    approved_from: Mapped[date] = mapped_column(Date, nullable=False)
    approved_to: Mapped[date | None] = mapped_column(Date)
    approved_by: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class Redemption(Base):
    """Vouchers spent on one verified visit; a visit is paid once, whatever retries arrive."""

    __tablename__ = "redemptions"
    __table_args__ = (
        Index("ix_redemptions_org_day", "org_id", "service_day"),
        CheckConstraint("copay_fen >= 0 AND subsidy_fen >= 0", name="nonnegative"),
        {"schema": "subsidy"},
    )

    id: Mapped[uuid.UUID] = pk_column()
    visit_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, unique=True)
    voucher_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    elder_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    service_day: Mapped[date] = mapped_column(Date, nullable=False)
    price_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    subsidy_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    copay_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fund: Mapped[str | None] = mapped_column(String(64))
    posting_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_by: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
