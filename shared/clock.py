"""Dates as the platform's users live them: China Standard Time (UTC+8, no DST).

Timestamps are stored in UTC; "today" — an elder's age, a default start date, which month a
reading belongs to — is the date in Asia/Shanghai, whatever time zone the server runs in.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def today() -> date:
    return datetime.now(SHANGHAI).date()
