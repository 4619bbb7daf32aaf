"""The service catalogue: categories holding items, named by code or by their usual Chinese
name; who may deliver which item."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import policy as dispatch_policy
from services.dispatch.catalogue.models import ServiceCategory, ServiceItem
from services.dispatch.catalogue.schemas import CategoryRead, ItemCreate, ItemRead, ItemUpdate
from shared.errors import Conflict, NotFound, Unprocessable
from shared.i18n import T
from shared.pagination import Page, decode_cursor, paginate


@dataclass(frozen=True)
class Item:
    code: str
    category: str
    name_zh: str
    name_en: str
    roles: frozenset[str]
    medical: bool


@dataclass(frozen=True)
class Catalogue:
    items: dict[str, Item]  # active items by code
    names: dict[str, str]  # code, Chinese name, English name, alias → code

    def resolve(self, names: Iterable[str], *, field: str) -> list[str]:
        """Codes for ``names`` (codes or usual names), in order, without repeats; an unknown
        name is refused with the valid list."""
        out: list[str] = []
        unknown: list[str] = []
        for raw in names:
            code = self.names.get(raw.strip()) or self.names.get(raw.strip().lower())
            if code is None:
                unknown.append(raw)
            elif code not in out:
                out.append(code)
        if unknown:
            valid = ", ".join(f"{i.code} ({i.name_zh})" for i in self.items.values())
            raise Unprocessable(
                T(
                    f"未知服务项目：{'、'.join(unknown)}",
                    f"unknown service items: {', '.join(unknown)}",
                ),
                errors=[
                    (
                        field,
                        T(f"未知服务项目 {u}；可选：{valid}", f"unknown item {u}; valid: {valid}"),
                    )
                    for u in unknown
                ],
                valid_items=[
                    {"code": i.code, "name": i.name_zh, "category": i.category}
                    for i in self.items.values()
                ],
            )
        return out

    def kinds_in(self, codes: Iterable[str], category: str) -> set[str]:
        return {c for c in codes if c in self.items and self.items[c].category == category}


def build(items: Sequence[ServiceItem]) -> Catalogue:
    by_code: dict[str, Item] = {}
    names: dict[str, str] = {}
    for row in items:
        if not row.active:
            continue
        by_code[row.code] = Item(
            row.code, row.category_code, row.name_zh, row.name_en, frozenset(row.roles), row.medical
        )
        for name in (row.code, row.name_zh, row.name_en.lower(), *row.aliases):
            names.setdefault(name, row.code)
    return Catalogue(by_code, names)


async def load(*, session: AsyncSession) -> Catalogue:
    return build(list(await session.scalars(select(ServiceItem).order_by(ServiceItem.code))))


def check_qualified(
    catalogue: Catalogue,
    codes: Iterable[str],
    *,
    staff_role: str | None,
    medical_license_valid: bool,
    field: str = "items",
) -> None:
    """Medical items only by staff with the matching qualification, at a licensed org."""
    problems: list[tuple[str, T]] = []
    for code in codes:
        item = catalogue.items[code]
        if item.roles and staff_role is not None and staff_role not in item.roles:
            roles = ", ".join(sorted(item.roles))
            problems.append(
                (
                    field,
                    T(
                        f"{item.name_zh} 需要以下资质之一：{roles}",
                        f"{item.code} needs one of the roles {roles}",
                    ),
                )
            )
        if item.medical and not medical_license_valid:
            problems.append(
                (
                    field,
                    T(
                        f"{item.name_zh} 属医疗服务，机构须持有效《医疗机构执业许可证》",
                        f"{item.code} is a medical service: the org needs a valid medical licence",
                    ),
                )
            )
    if problems:
        raise Unprocessable(
            T("服务人员或机构不具备相应资质", "the caregiver or the org is not qualified"),
            errors=problems,
        )


def licence_valid(licence: str | None, valid_until: date | None, today: date) -> bool:
    return bool(licence) and (valid_until is None or valid_until >= today)


async def seed(*, session: AsyncSession) -> None:
    """The shipped catalogue, inserted once; an admin's later edits are never overwritten."""
    data = dispatch_policy.catalogue()
    cats, items = [], []
    for position, cat in enumerate(data["categories"]):
        cats.append(
            {"code": cat["code"], "name_zh": cat["zh"], "name_en": cat["en"], "position": position}
        )
        for it in cat["items"]:
            items.append(
                {
                    "code": it["code"],
                    "category_code": cat["code"],
                    "name_zh": it["zh"],
                    "name_en": it["en"],
                    "aliases": it.get("aliases", []),
                    "roles": it.get("roles", []),
                    "medical": bool(it.get("medical", False)),
                    "active": True,
                }
            )
    await session.execute(insert(ServiceCategory).values(cats).on_conflict_do_nothing())
    await session.execute(insert(ServiceItem).values(items).on_conflict_do_nothing())


async def categories(
    *, session: AsyncSession, cursor: str | None, limit: int
) -> Page[CategoryRead]:
    """Categories in their order (``position``), each with its items."""
    after = decode_cursor(cursor)
    if after is not None and not (isinstance(after, int) and -(2**31) <= after < 2**31):
        raise Unprocessable(  # positions are 32-bit: this cursor names no category
            T("分页游标无效", "cursor is not valid"),
            errors=[("cursor", T("不是有效的分页游标", "not a cursor"))],
        )
    page = await paginate(
        session,
        select(ServiceCategory),
        key=ServiceCategory.position,
        cursor=cursor,
        limit=limit,
    )
    codes = [c.code for c in page.items]
    items = (
        list(
            await session.scalars(
                select(ServiceItem)
                .where(ServiceItem.category_code.in_(codes))
                .order_by(ServiceItem.code)
            )
        )
        if codes
        else []
    )
    return Page[CategoryRead](
        items=[
            CategoryRead(
                code=c.code,
                name_zh=c.name_zh,
                name_en=c.name_en,
                items=[ItemRead.model_validate(i) for i in items if i.category_code == c.code],
            )
            for c in page.items
        ],
        next_cursor=page.next_cursor,
    )


async def create_item(*, session: AsyncSession, item_in: ItemCreate) -> ServiceItem:
    if await session.get(ServiceCategory, item_in.category_code) is None:
        raise Unprocessable(
            T("未知服务类别", "unknown category"),
            errors=[("category_code", T("未知服务类别", "unknown category"))],
        )
    if await session.get(ServiceItem, item_in.code) is not None:
        raise Conflict(T(f"服务项目 {item_in.code} 已存在", f"item {item_in.code} exists"))
    item = ServiceItem(**item_in.model_dump(), active=True)
    session.add(item)
    await session.flush()
    return item


async def update_item(*, session: AsyncSession, code: str, item_in: ItemUpdate) -> ServiceItem:
    item = await session.get(ServiceItem, code)
    if item is None:
        raise NotFound(T(f"未找到服务项目 {code}", f"item {code} not found"))
    for name, value in item_in.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(item, name, value)
    await session.flush()
    return item
