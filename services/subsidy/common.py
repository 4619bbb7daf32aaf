"""Small things every subsidy aggregate uses: months, quarters, the service name."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, Field

from shared import clock
from shared.errors import Unprocessable
from shared.i18n import T

SERVICE = "subsidy"
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def parse_month(text: str, field: str = "month") -> date:
    m = _MONTH.match(text)
    if not m:
        raise Unprocessable(
            T(f"{field} 应为 YYYY-MM", f"{field} must be YYYY-MM"),
            errors=[(field, T("应为 YYYY-MM 格式的月份", "must be a month, YYYY-MM"))],
        )
    return date(int(m[1]), int(m[2]), 1)


def _month(text: str) -> str:
    if not _MONTH.match(text):
        raise ValueError("must be a month, YYYY-MM")
    return text


Month = Annotated[str, AfterValidator(_month), Field(examples=["2025-06"])]
# Identifiers and text that reach the database: no NUL or other control characters (bad
# input is a 422 naming the field, never a database error).
Code = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", examples=["sz-home-care-voucher"])
]
Text = Annotated[str, Field(pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$")]


def month_text(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def quarter_bounds(text: str) -> tuple[date, date]:
    """``2025Q1`` → (2025-01-01, 2025-03-01): the first days of its first and last month."""
    m = _QUARTER.match(text)
    if not m:
        raise Unprocessable(
            T("季度应为 YYYYQn", "quarter must be YYYYQn"),
            errors=[("quarter", T("应为如 2025Q1 的季度", "must be a quarter like 2025Q1"))],
        )
    year, q = int(m[1]), int(m[2])
    return date(year, 3 * q - 2, 1), date(year, 3 * q, 1)


def this_month() -> date:
    return clock.today().replace(day=1)
