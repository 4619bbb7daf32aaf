"""Cursor pagination: ``?cursor=&limit=``, ordered by the time-ordered primary key.

The cursor is the last id of the previous page, opaque to clients (base64url). Ordering by a
UUIDv7 id is stable under inserts: a client walking pages never sees a row twice.
"""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from shared.errors import Unprocessable

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[
    str | None, Query(max_length=64, description="`next_cursor` of the previous page")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> uuid.UUID | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (ValueError, TypeError) as exc:
        raise Unprocessable("cursor is not valid", errors=[("cursor", "not a cursor")]) from exc


def next_cursor(rows: list, limit: int, id_of=lambda r: r.id) -> str | None:
    return encode_cursor(id_of(rows[limit - 1])) if len(rows) > limit else None
