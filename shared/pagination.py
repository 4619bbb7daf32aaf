"""Cursor pagination: ``?cursor=&limit=``, ordered by a time-ordered key; every list is a
``Page`` ``{items, next_cursor}``.

The cursor is the key of the last row of the previous page (a UUIDv7 id or a bigint
sequence), opaque to clients (base64url). Ordering by a time-ordered key is stable under
inserts: a client walking pages never sees a row twice.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Unprocessable
from shared.i18n import T

R = TypeVar("R")
Item = TypeVar("Item")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[
    str | None, Query(max_length=64, description="`next_cursor` of the previous page")
]


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = None


def encode_cursor(last: uuid.UUID | int) -> str:
    raw = last.bytes if isinstance(last, uuid.UUID) else int(last).to_bytes(8, "big", signed=True)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    """The key a cursor names: a UUID (16 bytes) or an int (8 bytes); None for no cursor."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if len(raw) == 8:
            return int.from_bytes(raw, "big", signed=True)
        return uuid.UUID(bytes=raw)
    except (ValueError, TypeError) as exc:
        raise Unprocessable(
            T("分页游标无效", "cursor is not valid"),
            errors=[("cursor", T("不是有效的分页游标", "not a cursor"))],
        ) from exc


def next_cursor(rows: list, limit: int, id_of: Callable[[Any], Any] = lambda r: r.id) -> str | None:
    return encode_cursor(id_of(rows[limit - 1])) if len(rows) > limit else None


async def paginate(
    session: AsyncSession,
    stmt: Select,
    *,
    key: ColumnElement,
    cursor: str | None,
    limit: int,
    descending: bool = False,
    read: Callable[[Any], Item] = lambda r: r,
    scalars: bool = True,
) -> Page[Item]:
    """One page of ``stmt`` ordered by ``key`` (ascending, or newest first), after ``cursor``.

    ``read`` turns each row into its response item; ``scalars=False`` pages plain rows (Core
    statements) instead of ORM entities."""
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(key < after if descending else key > after)
    stmt = stmt.order_by(key.desc() if descending else key).limit(limit + 1)
    result = await session.execute(stmt)
    rows = list(result.scalars() if scalars else result.all())
    name = key.key
    return Page(
        items=[read(r) for r in rows[:limit]],
        next_cursor=next_cursor(rows, limit, lambda r: getattr(r, name)),
    )
