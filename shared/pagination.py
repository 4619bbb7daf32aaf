"""Cursor pagination: ``?cursor=&limit=``, ordered by a stable key; every list is a ``Page``
``{items, next_cursor}``.

The cursor is the key of the last row of the previous page, opaque to clients (base64url).
A key is one column — a UUIDv7 id, a bigint sequence, a date — or a tuple of them when a list
is ordered by something people care about first (an assessment date) with the id breaking
ties. Ordering by a unique key is stable under inserts: a client walking pages never sees a
row twice.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, tuple_
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

KeyValue = uuid.UUID | int | date


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = None


def _pack(value: KeyValue) -> bytes:
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, date):
        return value.toordinal().to_bytes(8, "big", signed=True)
    return int(value).to_bytes(8, "big", signed=True)


def encode_cursor(last: KeyValue | tuple[KeyValue, ...]) -> str:
    parts = last if isinstance(last, tuple) else (last,)
    raw = b"".join(_pack(p) for p in parts)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid() -> Unprocessable:
    return Unprocessable(
        T("分页游标无效", "cursor is not valid"),
        errors=[("cursor", T("不是有效的分页游标", "not a cursor"))],
    )


def _unpack(raw: bytes, kinds: Sequence[type]) -> tuple[KeyValue, ...]:
    sizes = [16 if k is uuid.UUID else 8 for k in kinds]
    if len(raw) != sum(sizes):
        raise ValueError("cursor length does not match the key")
    out: list[KeyValue] = []
    at = 0
    for kind, size in zip(kinds, sizes, strict=True):
        chunk = raw[at : at + size]
        at += size
        if kind is uuid.UUID:
            out.append(uuid.UUID(bytes=chunk))
        elif kind is date:
            out.append(date.fromordinal(int.from_bytes(chunk, "big", signed=True)))
        else:
            out.append(int.from_bytes(chunk, "big", signed=True))
    return tuple(out)


def decode_cursor(cursor: str | None, kinds: Sequence[type] | None = None) -> Any:
    """The key a cursor names; None for no cursor.

    Without ``kinds``: a UUID (16 bytes) or an int (8 bytes). With ``kinds`` (the Python types
    of the key's columns): that key, a tuple when there are several columns."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if kinds is None:
            if len(raw) == 8:
                return int.from_bytes(raw, "big", signed=True)
            return uuid.UUID(bytes=raw)
        values = _unpack(raw, kinds)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _invalid() from exc
    return values if len(values) > 1 else values[0]


def next_cursor(rows: list, limit: int, id_of: Callable[[Any], Any] = lambda r: r.id) -> str | None:
    return encode_cursor(id_of(rows[limit - 1])) if len(rows) > limit else None


def _kind(column: ColumnElement) -> type:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return int
    if issubclass(python_type, uuid.UUID):
        return uuid.UUID
    if issubclass(python_type, datetime):
        raise TypeError("page by a unique id or sequence, not a timestamp (ties are likely)")
    if issubclass(python_type, date):
        return date
    return int


async def paginate(
    session: AsyncSession,
    stmt: Select,
    *,
    key: ColumnElement | Sequence[ColumnElement],
    cursor: str | None,
    limit: int,
    descending: bool = False,
    read: Callable[[Any], Item] = lambda r: r,
    scalars: bool = True,
) -> Page[Item]:
    """One page of ``stmt`` ordered by ``key`` (ascending, or newest first), after ``cursor``.

    ``key`` is a unique column or a tuple of columns ending in one (e.g. ``(assessed_on,
    id)``); ``read`` turns each row into its response item; ``scalars=False`` pages plain rows
    (Core statements) instead of ORM entities."""
    columns = list(key) if isinstance(key, Sequence) else [key]
    after = decode_cursor(cursor, [_kind(c) for c in columns])
    if after is not None:
        values = after if isinstance(after, tuple) else (after,)
        left = tuple_(*columns) if len(columns) > 1 else columns[0]
        right = tuple_(*values) if len(columns) > 1 else values[0]
        stmt = stmt.where(left < right if descending else left > right)
    stmt = stmt.order_by(*(c.desc() if descending else c for c in columns)).limit(limit + 1)
    result = await session.execute(stmt)
    rows = list(result.scalars() if scalars else result.all())
    names = [c.key for c in columns]

    def key_of(row: Any) -> Any:
        values = tuple(getattr(row, n) for n in names)
        return values if len(values) > 1 else values[0]

    return Page(
        items=[read(r) for r in rows[:limit]],
        next_cursor=next_cursor(rows, limit, key_of),
    )
