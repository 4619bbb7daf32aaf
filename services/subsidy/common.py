"""Small things every subsidy aggregate uses: months, quarters, the service name."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, Field

from shared import clock
from shared.dates import IsoDate
from shared.errors import Unprocessable
from shared.i18n import T

SERVICE = "subsidy"
# Months, quarters and days a request names lie in 2000–2099 (what-if years too): subsidy
# arithmetic adds months, 30-year look-backs and working-day windows to them, which must
# stay inside the calendar (year 0000 or 9999 would be a server error, not an answer).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
MONTH_PATTERN = r"^(20[0-9]{2})-(0[1-9]|1[0-2])$"
QUARTER_PATTERN = r"^(20[0-9]{2})Q([1-4])$"
_MONTH = re.compile(MONTH_PATTERN)
_QUARTER = re.compile(QUARTER_PATTERN)
_MONTH_MESSAGE = T(
    "应为 YYYY-MM 格式的月份（2000–2099 年）", "must be a month, YYYY-MM (years 2000–2099)"
)


def parse_month(text: str, field: str = "month") -> date:
    m = _MONTH.match(text)
    if not m:
        raise Unprocessable(
            T(f"{field} 应为 YYYY-MM", f"{field} must be YYYY-MM"),
            errors=[(field, _MONTH_MESSAGE)],
        )
    return date(int(m[1]), int(m[2]), 1)


def _month(text: str) -> str:
    if not _MONTH.match(text):
        raise ValueError(_MONTH_MESSAGE)
    return text


# the pattern is documented, and checked by ``_month`` (for its message in both languages)
Month = Annotated[
    str,
    AfterValidator(_month),
    Field(examples=["2025-06"], json_schema_extra={"pattern": MONTH_PATTERN}),
]
Quarter = Annotated[str, Field(pattern=QUARTER_PATTERN, examples=["2025Q1"])]


def _day(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(T("应为 2000–2099 年间的日期", "must be a date in 2000–2099"))
    return value


Day = Annotated[IsoDate, AfterValidator(_day), Field(description="YYYY-MM-DD, 2000–2099")]
"""A date in a request (``YYYY-MM-DD``, 2000–2099)."""
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
            errors=[
                (
                    "quarter",
                    T(
                        "应为如 2025Q1 的季度（2000–2099 年）",
                        "must be a quarter like 2025Q1 (years 2000–2099)",
                    ),
                )
            ],
        )
    year, q = int(m[1]), int(m[2])
    return date(year, 3 * q - 2, 1), date(year, 3 * q, 1)


def this_month() -> date:
    return clock.today().replace(day=1)
