"""The dead-letter queue: messages the ingest refused, with the reason (ops)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.telemetry.deadletters import service
from services.telemetry.deadletters.schemas import DeadLetterRead
from shared.auth import Principal, Role, platform_wide, require_roles
from shared.dates import IsoDateTime
from shared.pagination import Cursor, Limit, Page
from shared.uow import SessionDep

router = APIRouter(tags=["dead letters"])

Ops = require_roles(Role.admin)


@router.get(
    "/v1/dead-letters",
    response_model=Page[DeadLetterRead],
    summary="Messages the ingest refused, newest first, with the reason (ops)",
)
async def dead_letters(
    session: SessionDep,
    principal: Principal = Ops,
    reason: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[
        IsoDateTime | None, Query(description="received at or after (RFC 3339 with an offset)")
    ] = None,
    until: Annotated[IsoDateTime | None, Query(description="received before")] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Page[DeadLetterRead]:
    platform_wide(principal)  # dead letters hold raw payloads from every region
    page = await service.dead_letters(
        session=session, reason=reason, since=since, until=until, cursor=cursor, limit=limit
    )
    return Page[DeadLetterRead](
        items=[DeadLetterRead.of(r) for r in page.items], next_cursor=page.next_cursor
    )
