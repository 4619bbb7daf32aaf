from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from fastapi import APIRouter

from services.registry.beds import service
from services.registry.beds.schemas import (
    BedCreate,
    BedEventRead,
    BedRead,
    BedStatus,
    BedTransition,
    ModificationCreate,
    ModificationRead,
)
from shared import clock
from shared.auth import CaseWriter, Principal, ScopedReader, StaffReader
from shared.errors import problem_doc
from shared.pagination import Cursor, Limit, Page, next_cursor
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/beds", tags=["beds"])

Writer = CaseWriter
Reader = ScopedReader
Lister = StaffReader


@router.post(
    "",
    status_code=201,
    response_model=BedRead,
    summary="Open a home care bed; 422 with `reasons` listing every failed condition",
    responses={
        422: problem_doc("not eligible (`reasons` lists every failed condition) or invalid")
    },
)
async def create_bed(
    bed_in: BedCreate, session: SessionDep, principal: Principal = Writer
) -> BedRead:
    bed = await service.create(
        session=session, principal=principal, bed_in=bed_in, today=clock.today()
    )
    return BedRead.model_validate(bed)


@router.get("", response_model=Page[BedRead], summary="Beds in your scope")
async def list_beds(
    session: SessionDep,
    principal: Principal = Lister,
    org: uuid.UUID | None = None,
    status: BedStatus | None = None,
    elder_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[BedRead]:
    rows = await service.list_page(
        session=session,
        principal=principal,
        org=org,
        status=status,
        elder_id=elder_id,
        cursor=cursor,
        limit=limit,
    )
    return Page[BedRead](
        items=[BedRead.model_validate(b) for b in rows[:limit]],
        next_cursor=next_cursor(rows, limit),
    )


@router.get("/{bed_id}", response_model=BedRead)
async def get_bed(bed_id: uuid.UUID, session: SessionDep, principal: Principal = Reader) -> BedRead:
    return BedRead.model_validate(
        await service.get(session=session, principal=principal, bed_id=bed_id)
    )


@router.get(
    "/{bed_id}/events",
    response_model=list[BedEventRead],
    summary="Lifecycle history with effective dates",
)
async def bed_events(
    bed_id: uuid.UUID, session: SessionDep, principal: Principal = Reader
) -> list[BedEventRead]:
    bed = await service.get(session=session, principal=principal, bed_id=bed_id)
    return [BedEventRead.model_validate(e) for e in await service.events(session=session, bed=bed)]


@router.post(
    "/{bed_id}/modifications",
    status_code=201,
    response_model=ModificationRead,
    summary="Record aging-adaptation or smart-device work (cost in fen, ≥1 year warranty)",
)
async def create_modification(
    bed_id: uuid.UUID,
    mod_in: ModificationCreate,
    session: SessionDep,
    principal: Principal = Writer,
) -> ModificationRead:
    bed = await service.get(session=session, principal=principal, bed_id=bed_id)
    modification = await service.add_modification(session=session, bed=bed, mod_in=mod_in)
    return _mod_read(modification, clock.today())


@router.get("/{bed_id}/modifications", response_model=list[ModificationRead])
async def list_modifications(
    bed_id: uuid.UUID, session: SessionDep, principal: Principal = Reader
) -> list[ModificationRead]:
    bed = await service.get(session=session, principal=principal, bed_id=bed_id)
    today = clock.today()
    return [_mod_read(m, today) for m in await service.modifications(session=session, bed=bed)]


# Declared after /modifications: the path parameter would swallow it otherwise.
@router.post(
    "/{bed_id}/{action}",
    response_model=BedRead,
    summary="Lifecycle step: activate (applied→active), suspend, resume, terminate",
)
async def transition_bed(
    bed_id: uuid.UUID,
    action: Literal["activate", "suspend", "resume", "terminate"],
    session: SessionDep,
    step: BedTransition | None = None,
    principal: Principal = Writer,
) -> BedRead:
    bed = await service.get(session=session, principal=principal, bed_id=bed_id)
    bed = await service.transition(
        session=session,
        principal=principal,
        bed=bed,
        action=action,
        step=step or BedTransition(),
        today=clock.today(),
    )
    return BedRead.model_validate(bed)


def _mod_read(modification, today: date) -> ModificationRead:
    read = ModificationRead.model_validate(modification)
    read.under_warranty = modification.warranty_until >= today
    return read
