"""The dead-letter queue: messages the ingest refused, with the reason (ops)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.telemetry.deadletters import service
from services.telemetry.deadletters.schemas import DeadLetterRead
from shared.auth import Principal, Role, platform_wide, require_roles
from shared.pagination import Limit
from shared.uow import SessionDep

router = APIRouter(tags=["dead letters"])

Ops = require_roles(Role.admin)


@router.get(
    "/v1/dead-letters",
    response_model=list[DeadLetterRead],
    summary="Messages the ingest refused, with the reason (ops)",
)
async def dead_letters(
    session: SessionDep,
    principal: Principal = Ops,
    reason: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 100,
) -> list[DeadLetterRead]:
    platform_wide(principal)  # dead letters hold raw payloads from every region
    rows = await service.dead_letters(session=session, reason=reason, limit=limit)
    return [DeadLetterRead.of(r) for r in rows]
