from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.registry.elders import service as elders
from services.registry.elders.moves import service
from services.registry.elders.moves.schemas import MoveCreate, MoveRead, MoveWithdraw
from shared import clock
from shared.auth import CaseWriter, Principal, StaffReader
from shared.errors import problem_doc
from shared.pagination import Cursor, Limit, Page
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/elders/{elder_id}/moves", tags=["elders"])

Writer = CaseWriter
Reader = StaffReader


@router.post(
    "",
    status_code=201,
    response_model=MoveRead,
    summary="Record that the elder moved (residence, and hukou if it changed) on a date",
    description=(
        "Writes a dated row of the elder's residence history. When `moved_on` is today or "
        "earlier the elder's current `residence_region`/`hukou_region` become the row in force "
        "today; a move recorded ahead (up to 90 days) takes effect on its day. Subsidies count "
        "each day at the place in force that day, so a move mid-month prorates by day.\n\n"
        "Who: case writers who can see the elder. A civil-affairs office records a move "
        "anywhere (the office an elder leaves records where they went); an org records only "
        "where the elder lives, inside its service area, never a hukou. The move changes "
        "nobody's access beyond the scoping rule of every read. Org roles recording a date "
        "more than 31 days back say why in `reason` (audited)."
    ),
    responses={409: problem_doc("a move on that day is already recorded (`existing_id`)")},
)
async def record_move(
    elder_id: uuid.UUID, move_in: MoveCreate, session: SessionDep, principal: Principal = Writer
) -> MoveRead:
    elder = await elders.get(session=session, principal=principal, elder_id=elder_id)
    today = clock.today()
    row = await service.record(
        session=session, principal=principal, elder=elder, move_in=move_in, today=today
    )
    return service.to_read(row, current=row.id == await service.current_id(session, elder, today))


@router.get(
    "",
    response_model=Page[MoveRead],
    summary="The elder's residence history, oldest first (the first row: as registered)",
)
async def list_moves(
    elder_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[MoveRead]:
    elder = await elders.get(session=session, principal=principal, elder_id=elder_id)
    page = await service.list_for(session=session, elder=elder, cursor=cursor, limit=limit)
    now = await service.current_id(session, elder, clock.today())
    return Page[MoveRead](
        items=[service.to_read(r, current=r.id == now) for r in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/{move_id}/withdraw",
    response_model=MoveRead,
    summary="Withdraw a move recorded by mistake (civil-affairs offices; audited)",
    description=(
        "The row is removed, later rows' copies of what it changed go back to what held before "
        "it, and the elder's current place follows. The answer is the withdrawn row. The next "
        "subsidy run reverses what the move had granted or takes back what it had cut."
    ),
)
async def withdraw_move(
    elder_id: uuid.UUID,
    move_id: uuid.UUID,
    body: MoveWithdraw,
    session: SessionDep,
    principal: Principal = Writer,
) -> MoveRead:
    elder = await elders.get(session=session, principal=principal, elder_id=elder_id)
    row = await service.withdraw(
        session=session,
        principal=principal,
        elder=elder,
        move_id=move_id,
        reason=body.reason,
        today=clock.today(),
    )
    return service.to_read(row, current=False)
