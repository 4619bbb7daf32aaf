"""Whose fault a failed store is — the message's, or ours — and how to log it without data.

Only errors that PostgreSQL raises *about a value* are the message's fault: the data
exception class (SQLSTATE 22: a number out of range, an untranslatable character, a NUL in
text …) and a check violation. Everything else — a missing table, column or privilege, a lost
connection, a full disk, a bug raising ``TypeError`` or ``KeyError`` — says nothing about the
message: it is retried, unacknowledged, until the store works again, and never dead-lettered
as bad data.

Exception messages are not logged: PostgreSQL's carry the offending values ("Failing row
contains …"), which here are health data. The class, the SQLSTATE and the names of the
table, column and constraint are enough to act on; a bug's traceback (code, no values) goes
with its class.
"""

from __future__ import annotations

import traceback

import asyncpg

DATA_ERRORS: tuple[type[BaseException], ...] = (asyncpg.DataError, asyncpg.CheckViolationError)


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` is about the stored values, i.e. the message's fault."""
    return isinstance(exc, DATA_ERRORS)


def describe(exc: BaseException) -> str:
    """``exc`` for a log line or a health report: class, SQLSTATE and object names only."""
    parts = [type(exc).__name__]
    if isinstance(exc, asyncpg.PostgresError):
        parts.append(f"sqlstate={exc.sqlstate}")
        for attr in ("schema_name", "table_name", "column_name", "constraint_name"):
            value = getattr(exc, attr, None)
            if value:
                parts.append(f"{attr.removesuffix('_name')}={value}")
    return " ".join(parts)


def where(exc: BaseException) -> str:
    """The traceback of a bug, without the exception's message (which may quote data)."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()
