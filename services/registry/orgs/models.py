from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, LargeBinary, String
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, created_at_column, pk_column


class Org(Base):
    """A service organisation (养老服务机构) that runs beds."""

    __tablename__ = "orgs"
    __table_args__ = {"schema": "registry"}

    id: Mapped[uuid.UUID] = pk_column()
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    credit_code: Mapped[str] = mapped_column(String(18), nullable=False, unique=True)
    region: Mapped[str] = mapped_column(String(12), nullable=False, index=True)
    medical_license: Mapped[str | None] = mapped_column(String(64))
    medical_license_valid_until: Mapped[date | None] = mapped_column(Date)
    licences: Mapped[list[dict]] = mapped_column(JSONB, nullable=False, default=list)
    created_at: Mapped[datetime] = created_at_column()


class Station(Base):
    """A service station of an org; the origin of the service-radius rule."""

    __tablename__ = "stations"
    __table_args__ = {"schema": "registry"}

    id: Mapped[uuid.UUID] = pk_column()
    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.orgs.id"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    address: Mapped[str | None] = mapped_column(String(256))
    region: Mapped[str | None] = mapped_column(String(12))
    lat: Mapped[float] = mapped_column(Float, nullable=False)
    lon: Mapped[float] = mapped_column(Float, nullable=False)
    zone: Mapped[str] = mapped_column(String(8), nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class Staff(Base):
    """A person an org sends to homes; certificates and insurance gate who may serve."""

    __tablename__ = "staff"
    __table_args__ = {"schema": "registry"}

    id: Mapped[uuid.UUID] = pk_column()
    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.orgs.id"), nullable=False, index=True
    )
    station_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("registry.stations.id"), index=True
    )
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    phone_masked: Mapped[str] = mapped_column(String(20), nullable=False)
    certificates: Mapped[list[dict]] = mapped_column(JSONB, nullable=False, default=list)
    insured_until: Mapped[date | None] = mapped_column(Date)
    on_duty: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = created_at_column()
