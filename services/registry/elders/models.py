from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, LargeBinary, SmallInteger, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column

SCHEMA = "registry"


class Elder(Base):
    __tablename__ = "elders"
    __table_args__ = (
        Index(
            "ix_elders_hukou_region_prefix",
            "hukou_region",
            postgresql_ops={"hukou_region": "text_pattern_ops"},
        ),
        Index(
            "ix_elders_residence_region_prefix",
            "residence_region",
            postgresql_ops={"residence_region": "text_pattern_ops"},
        ),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = pk_column()
    # The ID number is never stored in clear: ciphertext for authorised reads, a keyed hash
    # for duplicate detection and lookup, and the mask precomputed for everyone else.
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    id_number_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    id_number_masked: Mapped[str] = mapped_column(String(18), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    birth_date: Mapped[date] = mapped_column(Date, nullable=False)
    gender: Mapped[str] = mapped_column(String(8), nullable=False)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_masked: Mapped[str | None] = mapped_column(String(20))
    hukou_region: Mapped[str] = mapped_column(String(12), nullable=False)
    residence_region: Mapped[str] = mapped_column(String(12), nullable=False)
    address: Mapped[str] = mapped_column(String(256), nullable=False)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    zone: Mapped[str] = mapped_column(String(8), nullable=False)
    living_arrangement: Mapped[str] = mapped_column(String(32), nullable=False)
    lives_at_home: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    deceased_on: Mapped[date | None] = mapped_column(Date)
    # Denormalised from the latest assessment so lists can filter on it without a join.
    current_level: Mapped[int | None] = mapped_column(SmallInteger, index=True)
    reassessment_due_on: Mapped[date | None] = mapped_column(Date)
    registered_by_org: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.orgs.id"), index=True
    )
    created_at: Mapped[datetime] = created_at_column()
