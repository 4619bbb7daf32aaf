from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class ServiceCategory(Base):
    """A kind of home service (生活照料, 个人护理, …); ``daily_living`` is the one the
    3-kinds rule counts."""

    __tablename__ = "service_categories"
    __table_args__ = {"schema": "dispatch"}

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64), nullable=False)
    name_en: Mapped[str] = mapped_column(String(64), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class ServiceItem(Base):
    __tablename__ = "service_items"
    __table_args__ = {"schema": "dispatch"}

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    category_code: Mapped[str] = mapped_column(
        String(32), ForeignKey("dispatch.service_categories.code"), nullable=False, index=True
    )
    name_zh: Mapped[str] = mapped_column(String(64), nullable=False)
    name_en: Mapped[str] = mapped_column(String(64), nullable=False)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False, default=list)
    # staff roles qualified to deliver it (empty: anyone); medical: the org needs a licence
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False, default=list)
    medical: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
