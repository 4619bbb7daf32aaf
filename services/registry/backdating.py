"""How far back (and ahead) a start date may be recorded, and by whom.

A district moving from spreadsheets records beds that began in 2023: the civil-affairs side
(admin, street, community) records history as it happened, with no bound. The roles that
benefit from an earlier date — an org recording its own bed — may date a record up to
``WINDOW`` back freely (paperwork lags); further back they must say why (``reason``), and the
reason is kept on the record and the act audited. Nobody gets a bare refusal: the 422 names
the reason field. Eligibility is always checked on the date recorded, not on today.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shared import audit
from shared.auth import Principal, Role
from shared.errors import Unprocessable
from shared.i18n import T

WINDOW = timedelta(days=31)
MAX_AHEAD = timedelta(days=90)
HISTORIANS = frozenset({Role.admin, Role.street, Role.community})


def check(
    day: date,
    today: date,
    *,
    principal: Principal,
    reason: str | None,
    field: str,
    reason_field: str,
) -> bool:
    """Refuse a start date too far ahead, or too far back without a reason; True when
    ``day`` is back-dated beyond the window (the caller keeps the reason and audits)."""
    if day > today + MAX_AHEAD:
        limit = today + MAX_AHEAD
        raise Unprocessable(
            T(f"{field} 不能晚于 {limit}", f"{field} must not be after {limit}"),
            errors=[(field, T(f"不能晚于 {limit}", f"must not be after {limit}"))],
        )
    backdated = day < today - WINDOW
    if backdated and principal.role not in HISTORIANS and not reason:
        days = WINDOW.days
        raise Unprocessable(
            T(
                f"{field} 早于 {days} 天前：请在 {reason_field} 中说明原因（将记录并审计）",
                f"{field} is more than {days} days back: say why in {reason_field} "
                "(it is kept with the record and audited)",
            ),
            errors=[
                (
                    reason_field,
                    T(
                        f"{field} 早于 {days} 天前时必填",
                        f"required when {field} is more than {days} days back",
                    ),
                )
            ],
        )
    return backdated


async def audit_backdating(
    session: AsyncSession,
    *,
    principal: Principal,
    resource_type: str,
    resource_id: uuid.UUID,
    field: str,
    day: date,
) -> None:
    await audit.record(
        session,
        service="registry",
        principal=principal,
        action="backdate",
        resource_type=resource_type,
        resource_id=resource_id,
        fields=[f"{field}:{day.isoformat()}"],
    )
