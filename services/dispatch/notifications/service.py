"""Queue notifications (delivered by ``notifications/delivery.py`` through a ``Notifier``).

Family caregivers' phones are encrypted in the registry and absent from the read model; a
notification names the caregiver by id with the masked phone, name and relation. The
district's SMS or push gateway that receives the webhook resolves the id to a number with its
own registry credentials (the registry audits that read), so clear phone numbers never sit in
dispatch's queue, its retries or its logs.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.notifications.models import Notification
from shared import readmodel as rm

CHANNEL = "dispatch_notifications"


async def enqueue(
    *,
    session: AsyncSession,
    event: str,
    recipient_kind: str,
    payload: dict[str, Any],
    dispatch_id: uuid.UUID | None = None,
) -> None:
    await enqueue_many(
        session=session,
        rows=[
            {
                "event": event,
                "recipient_kind": recipient_kind,
                "payload": payload,
                "dispatch_id": dispatch_id,
            }
        ],
    )


async def enqueue_many(*, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    await session.execute(insert(Notification).values([{**r, "status": "pending"} for r in rows]))
    await session.execute(select(func.pg_notify(CHANNEL, "")))


async def family_recipients(*, session: AsyncSession, elder_id: uuid.UUID) -> list[dict[str, Any]]:
    f = rm.family_caregivers
    rows = await session.execute(
        select(f.c.id, f.c.name, f.c.relation, f.c.phone_masked, f.c.lives_with)
        .where(f.c.elder_id == elder_id, f.c.active.is_(True))
        .order_by(f.c.lives_with.desc(), f.c.id)
    )
    return [
        {
            "caregiver_id": str(r.id),
            "name": r.name,
            "relation": r.relation,
            "phone_masked": r.phone_masked,
            "lives_with": r.lives_with,
        }
        for r in rows
    ]
