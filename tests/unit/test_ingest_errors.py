"""Whose fault a failed store is, and what of it may be logged."""

from __future__ import annotations

import asyncpg
import pytest
from asyncpg.exceptions import _base

from services.telemetry.ingest.errors import describe, is_data_error, where


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.DataError("x"),
        asyncpg.NumericValueOutOfRangeError("smallint out of range"),
        asyncpg.UntranslatableCharacterError("\\u0000 cannot be converted to text"),
        asyncpg.CharacterNotInRepertoireError("invalid byte sequence"),
        asyncpg.InvalidTextRepresentationError("invalid input syntax"),
        asyncpg.StringDataRightTruncationError("value too long"),
        asyncpg.CheckViolationError("violates check constraint"),
    ],
)
def test_values_the_database_refuses_are_the_messages_fault(exc):
    assert is_data_error(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.UndefinedTableError('relation "telemetry.events" does not exist'),
        asyncpg.UndefinedColumnError("column does not exist"),
        asyncpg.InsufficientPrivilegeError("permission denied for table events"),
        asyncpg.SyntaxOrAccessError("x"),
        asyncpg.UniqueViolationError("duplicate key"),  # a race or a bug, not the payload
        asyncpg.NotNullViolationError("null value"),
        asyncpg.ForeignKeyViolationError("fk"),
        asyncpg.DiskFullError("no space left"),
        asyncpg.AdminShutdownError("terminating connection"),
        asyncpg.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        _base.DataError("invalid input for query argument $1"),  # our encoding bug
        asyncpg.exceptions.OutdatedSchemaCacheError("cached statement plan is invalid"),
        ConnectionRefusedError(),
        OSError("network unreachable"),
        TimeoutError(),
        TypeError("unsupported operand"),
        AttributeError("'NoneType' object has no attribute 'elder_id'"),
        KeyError("heart_rate"),
        LookupError("x"),
        ValueError("x"),
        ArithmeticError(),
        RecursionError(),
    ],
)
def test_everything_else_is_ours_and_retried(exc):
    assert not is_data_error(exc)


def test_describe_names_the_class_and_objects_never_the_values():
    exc = asyncpg.CheckViolationError(
        'new row for relation "events_2026_11" violates check constraint "ck"'
    )
    exc.detail = 'Failing row contains (2026-11-26, vit-1, m-1, {"spo2": 83}).'
    exc.table_name, exc.constraint_name, exc.schema_name = "events_2026_11", "ck", "telemetry"
    text = describe(exc)
    assert text == (
        "CheckViolationError sqlstate=23514 schema=telemetry table=events_2026_11 constraint=ck"
    )
    assert describe(TypeError("spo2=83")) == "TypeError"


def test_where_shows_the_code_not_the_message():
    def failing():
        value = 83
        raise KeyError(f"spo2={value}")

    try:
        failing()
    except KeyError as exc:
        text = where(exc)
    assert "in failing" in text and "spo2=83" not in text
