from __future__ import annotations

import uuid
from datetime import date

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.beds import service
from services.registry.beds.models import Modification
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
from shared.pagination import Cursor, Limit, Page
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
    page = await service.list_page(
        session=session,
        principal=principal,
        org=org,
        status=status,
        elder_id=elder_id,
        cursor=cursor,
        limit=limit,
    )
    return Page[BedRead](
        items=[BedRead.model_validate(b) for b in page.items], next_cursor=page.next_cursor
    )


@router.get("/{bed_id}", response_model=BedRead)
async def get_bed(bed_id: uuid.UUID, session: SessionDep, principal: Principal = Reader) -> BedRead:
    return BedRead.model_validate(
        await service.get(session=session, principal=principal, bed_id=bed_id)
    )


@router.get(
    "/{bed_id}/events",
    response_model=Page[BedEventRead],
    summary="Lifecycle history with effective dates, in the order recorded",
)
async def bed_events(
    bed_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[BedEventRead]:
    bed = await service.get(session=session, principal=principal, bed_id=bed_id)
    page = await service.events(session=session, bed=bed, cursor=cursor, limit=limit)
    return Page[BedEventRead](
        items=[BedEventRead.model_validate(e) for e in page.items], next_cursor=page.next_cursor
    )


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


@router.get(
    "/{bed_id}/modifications",
    response_model=Page[ModificationRead],
    summary="Work done for the bed, by date",
)
async def list_modifications(
    bed_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ModificationRead]:
    bed = await service.get(session=session, principal=principal, bed_id=bed_id)
    today = clock.today()
    page = await service.modifications(session=session, bed=bed, cursor=cursor, limit=limit)
    return Page[ModificationRead](
        items=[_mod_read(m, today) for m in page.items], next_cursor=page.next_cursor
    )


async def _transition(
    action: str,
    bed_id: uuid.UUID,
    step: BedTransition | None,
    session: AsyncSession,
    principal: Principal,
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


# One route per step (not ``/{bed_id}/{action}``): a catch-all would swallow every other
# path under a bed and answer 422 where 404 or 405 is the truth.
@router.post(
    "/{bed_id}/activate",
    response_model=BedRead,
    summary="Activate an applied bed (applied → active) from `on`; eligibility is checked then",
    responses={409: problem_doc("the bed's status does not allow this step (`allowed` lists)")},
)
async def activate_bed(
    bed_id: uuid.UUID,
    session: SessionDep,
    step: BedTransition | None = None,
    principal: Principal = Writer,
) -> BedRead:
    return await _transition("activate", bed_id, step, session, principal)


@router.post(
    "/{bed_id}/suspend",
    response_model=BedRead,
    summary="Suspend an active bed (hospital stay, travel)",
    responses={409: problem_doc("the bed's status does not allow this step (`allowed` lists)")},
)
async def suspend_bed(
    bed_id: uuid.UUID,
    session: SessionDep,
    step: BedTransition | None = None,
    principal: Principal = Writer,
) -> BedRead:
    return await _transition("suspend", bed_id, step, session, principal)


@router.post(
    "/{bed_id}/resume",
    response_model=BedRead,
    summary="Resume a suspended bed",
    responses={409: problem_doc("the bed's status does not allow this step (`allowed` lists)")},
)
async def resume_bed(
    bed_id: uuid.UUID,
    session: SessionDep,
    step: BedTransition | None = None,
    principal: Principal = Writer,
) -> BedRead:
    return await _transition("resume", bed_id, step, session, principal)


@router.post(
    "/{bed_id}/terminate",
    response_model=BedRead,
    summary="Terminate a bed (a `reason` is required); the org's access to the elder ends",
    responses={409: problem_doc("the bed's status does not allow this step (`allowed` lists)")},
)
async def terminate_bed(
    bed_id: uuid.UUID,
    session: SessionDep,
    step: BedTransition | None = None,
    principal: Principal = Writer,
) -> BedRead:
    return await _transition("terminate", bed_id, step, session, principal)


def _mod_read(modification: Modification, today: date) -> ModificationRead:
    read = ModificationRead.model_validate(modification)
    read.under_warranty = modification.warranty_until >= today
    return read
