"""Queue a command to another service in the caller's transaction (delivered by
``outbox/relay.py``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, String, bindparam, cast, exists, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB, Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.outbox.models import OutboxMessage

CHANNEL = "dispatch_outbox"


def enqueue_statement(*, target: str, method: str, path: Any, body: Any, key: Any) -> Insert:
    """The outbox row as a statement, for a caller that writes it together with its own
    change (committed together; the caller sends the NOTIFY on ``CHANNEL``)."""
    return (
        insert(OutboxMessage.__table__)
        .values(target=target, method=method, path=path, body=body, idempotency_key=key)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )


async def enqueue(
    *, session: AsyncSession, target: str, method: str, path: str, body: dict[str, Any], key: str
) -> None:
    await session.execute(
        enqueue_statement(target=target, method=method, path=path, body=body, key=key)
    )
    await session.execute(select(func.pg_notify(CHANNEL, "")))


# Telling telemetry a caregiver is in the home (behaviour alerts pause) or has left, as a
# statement built once: parameters from ``visit_mode_values`` (the hot path of a check-in).
# ``box_send`` false writes nothing (a switch that must not happen, decided by the caller).
_m = OutboxMessage.__table__
VISIT_MODE = (
    insert(_m)
    .from_select(
        ["target", "method", "path", "body", "idempotency_key", "attempts"],
        select(
            literal("telemetry"),
            literal("PUT"),
            bindparam("box_path", type_=String),
            bindparam("box_body", type_=JSONB),
            bindparam("box_key", type_=String),
            literal(0),
        ).where(bindparam("box_send", type_=Boolean)),
    )
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
)


def visit_mode_key(visit_id: Any, active: bool) -> str:
    return f"visit-mode:{visit_id}:{'in' if active else 'out'}"


def visit_mode_was_sent(visit_id: Any, active: bool) -> Any:
    """SQL: this visit's VISIT-mode switch is in the outbox (``visit_id`` a column)."""
    key = literal("visit-mode:") + cast(visit_id, String) + literal(":in" if active else ":out")
    return exists().where(_m.c.idempotency_key == key)


def visit_mode_values(
    *, elder_id: Any, visit_id: Any, staff_id: Any, active: bool, send: bool = True
) -> dict[str, Any]:
    return {
        "box_send": send,
        "box_path": f"/v1/elders/{elder_id}/visit-mode",
        "box_body": {
            "active": active,
            "staff_id": str(staff_id) if staff_id else None,
            "visit_ref": str(visit_id),
        },
        "box_key": visit_mode_key(visit_id, active),
    }


async def resolve_alert(*, session: AsyncSession, alert_id: Any, note: str | None) -> None:
    await enqueue(
        session=session,
        target="telemetry",
        method="POST",
        path=f"/v1/alerts/{alert_id}/resolve",
        body={"outcome": "resolved", "note": (note or "resolved by dispatch")[:500]},
        key=f"resolve:{alert_id}",
    )
