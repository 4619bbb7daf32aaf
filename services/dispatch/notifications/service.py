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

import orjson
from sqlalchemy import (
    String,
    Text,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by, insert
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


def family_of(elder_id: Any) -> Any:
    """SQL: the active family caregivers of ``elder_id`` (a column) as a JSON list of
    recipients (those living with the elder first), ``[]`` when there are none."""
    f = rm.family_caregivers
    person = func.json_build_object(
        "caregiver_id",
        cast(f.c.id, String),
        "name",
        f.c.name,
        "relation",
        f.c.relation,
        "phone_masked",
        f.c.phone_masked,
        "lives_with",
        f.c.lives_with,
    )
    return (
        select(
            func.coalesce(
                func.json_agg(aggregate_order_by(person, f.c.lives_with.desc(), f.c.id)),
                literal_column("'[]'::json"),
            )
        )
        .where(f.c.elder_id == elder_id, f.c.active.is_(True))
        .scalar_subquery()
    )


async def family_recipients(
    *, session: AsyncSession, elder_ids: set[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The active family caregivers of these elders, by elder id."""
    if not elder_ids:
        return {}
    e = rm.elders
    rows = await session.execute(select(e.c.id, family_of(e.c.id)).where(e.c.id.in_(elder_ids)))
    return {elder: family for elder, family in rows}


def from_arrays(dispatch_id: Any, *, source: Any = None) -> Any:
    """Messages of one dispatch (``dispatch_id`` a column of ``source``, or a value) from the
    parallel arrays of ``arrays``, as an INSERT … SELECT — for a caller writing them with its
    own change."""
    m = (
        func.unnest(
            bindparam("n_event", type_=ARRAY(String)),
            bindparam("n_kind", type_=ARRAY(String)),
            bindparam("n_payload", type_=ARRAY(Text)),
        )
        .table_valued("event", "kind", "payload", with_ordinality="n")
        .render_derived(name="m")
    )
    return insert(Notification.__table__).from_select(
        ["dispatch_id", "event", "recipient_kind", "payload", "status"],
        select(dispatch_id, m.c.event, m.c.kind, cast(m.c.payload, JSONB), literal("pending"))
        .select_from(source.join(m, true()) if source is not None else m)
        .order_by(m.c.n),
    )


def arrays(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Parameters of ``from_arrays`` for these messages."""
    return {
        "n_event": [r["event"] for r in rows],
        "n_kind": [r["recipient_kind"] for r in rows],
        "n_payload": [orjson.dumps(r["payload"]).decode() for r in rows],
    }
