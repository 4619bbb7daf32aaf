"""Queue a command to another service in the caller's transaction (delivered by
``outbox/relay.py``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.outbox.models import OutboxMessage

CHANNEL = "dispatch_outbox"


async def enqueue(
    *, session: AsyncSession, target: str, method: str, path: str, body: dict[str, Any], key: str
) -> None:
    await session.execute(
        insert(OutboxMessage)
        .values(target=target, method=method, path=path, body=body, idempotency_key=key)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    await session.execute(select(func.pg_notify(CHANNEL, "")))


async def visit_mode(
    *,
    session: AsyncSession,
    elder_id: Any,
    visit_id: Any,
    staff_id: Any,
    active: bool,
) -> None:
    """Tell telemetry a caregiver is in the home (behaviour alerts pause) or has left."""
    await enqueue(
        session=session,
        target="telemetry",
        method="PUT",
        path=f"/v1/elders/{elder_id}/visit-mode",
        body={
            "active": active,
            "staff_id": str(staff_id) if staff_id else None,
            "visit_ref": str(visit_id),
        },
        key=f"visit-mode:{visit_id}:{'in' if active else 'out'}",
    )


async def resolve_alert(*, session: AsyncSession, alert_id: Any, note: str | None) -> None:
    await enqueue(
        session=session,
        target="telemetry",
        method="POST",
        path=f"/v1/alerts/{alert_id}/resolve",
        body={"outcome": "resolved", "note": (note or "resolved by dispatch")[:500]},
        key=f"resolve:{alert_id}",
    )
