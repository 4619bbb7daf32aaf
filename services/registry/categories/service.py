"""Welfare categories with validity periods; one code cannot overlap itself in time."""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.categories.models import Category
from services.registry.categories.schemas import CategoryCreate, CategoryRead
from services.registry.elders.models import Elder
from shared.errors import Conflict
from shared.i18n import T
from shared.pagination import Page, paginate

FAR_FUTURE = date(9999, 12, 31)


async def create(*, session: AsyncSession, elder: Elder, category_in: CategoryCreate) -> Category:
    end = category_in.valid_to or FAR_FUTURE
    overlapping = await session.scalar(
        select(Category.id)
        .where(
            Category.elder_id == elder.id,
            Category.code == category_in.code,
            Category.valid_from <= end,
            or_(Category.valid_to.is_(None), Category.valid_to >= category_in.valid_from),
        )
        .limit(1)
    )
    if overlapping is not None:
        raise Conflict(
            T(
                f"类别 {category_in.code} 与已有的有效期重叠",
                f"category {category_in.code} overlaps an existing period",
            ),
            existing_id=str(overlapping),
        )
    category = Category(elder_id=elder.id, **category_in.model_dump())
    session.add(category)
    await session.flush()
    return category


async def list_for(
    *, session: AsyncSession, elder: Elder, cursor: str | None, limit: int
) -> Page[Category]:
    """By start of the period (the order a history is read in), then as recorded."""
    stmt = select(Category).where(Category.elder_id == elder.id)
    key = (Category.valid_from, Category.id)
    return await paginate(session, stmt, key=key, cursor=cursor, limit=limit)


def to_read(category: Category, today: date) -> CategoryRead:
    read = CategoryRead.model_validate(category)
    read.current = category.valid_from <= today and (
        category.valid_to is None or today <= category.valid_to
    )
    return read
