from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from services.registry.beds import service as beds_service
from services.registry.deps import CipherDep
from services.registry.elders import service
from services.registry.elders.schemas import (
    ElderCreate,
    ElderRead,
    ElderUpdate,
    EligibilityRead,
    LivingArrangement,
    ReasonRead,
    Zone,
)
from shared import clock
from shared.auth import (
    CaseWriter,
    Principal,
    ScopedReader,
    StaffReader,
)
from shared.errors import problem_doc
from shared.pagination import Cursor, Limit, Page
from shared.uow import SessionDep, get_session

router = APIRouter(prefix="/v1/elders", tags=["elders"])

Writer = CaseWriter
Reader = ScopedReader
Lister = StaffReader


@router.post(
    "",
    status_code=201,
    response_model=ElderRead,
    summary="Register an elder (ID number validated, stored encrypted)",
    description=(
        "Region roles register elders whose hukou or residence is under their region; an org "
        "only inside its service area (its registered region and its stations' regions).\n\n"
        "**Duplicate ID number (409 `id-number-registered`).** A registry that keeps one record "
        "per person cannot create a second one, so the caller learns that the number is taken "
        "— and nothing more. Only a caller who may read the existing elder (the scoping rules "
        "of every read) gets `existing_id`. Everyone else gets one fixed document, the same "
        "whoever registered the elder and wherever: no id, no name, no region, no hint whether "
        "the elder is in another district, another org's or an office's record; the way on is "
        "the civil-affairs office, which may open a bed for the org (and with it, access)."
    ),
    responses={409: problem_doc("the ID number is already registered (`existing_id` if yours)")},
)
async def create_elder(
    elder_in: ElderCreate, session: SessionDep, cipher: CipherDep, principal: Principal = Writer
) -> ElderRead:
    elder = await service.create(
        session=session, principal=principal, cipher=cipher, elder_in=elder_in
    )
    return service.to_read(elder, clock.today())


@router.get("", response_model=Page[ElderRead], summary="List elders in your scope")
async def list_elders(
    session: SessionDep,
    principal: Principal = Lister,
    region: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    level: Annotated[int | None, Query(ge=0, le=4)] = None,
    min_level: Annotated[int | None, Query(ge=0, le=4)] = None,
    org: uuid.UUID | None = None,
    zone: Zone | None = None,
    living_arrangement: LivingArrangement | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ElderRead]:
    today = clock.today()
    filters = service.ElderFilters(
        region=region,
        category=category,
        level=level,
        min_level=min_level,
        org=org,
        zone=zone,
        living_arrangement=living_arrangement,
    )
    page = await service.list_page(
        session=session,
        principal=principal,
        filters=filters,
        cursor=cursor,
        limit=limit,
        today=today,
    )
    return Page[ElderRead](
        items=[service.to_read(e, today) for e in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/{elder_id}",
    response_model=ElderRead,
    summary="One elder; `include=pii` reveals ID number/phone to roles allowed (audited)",
)
async def get_elder(
    elder_id: uuid.UUID,
    request: Request,
    principal: Principal = Reader,
    include: Literal["pii"] | None = None,
) -> Response:
    if include == "pii":
        return await _get_with_pii(request, principal, elder_id)
    # The hottest read in the platform: raw asyncpg, no transaction, pre-serialised body.
    row = await service.get_row(
        pool=request.app.state.read_pool, principal=principal, elder_id=elder_id
    )
    return Response(service.read_json(row, clock.today()), media_type="application/json")


async def _get_with_pii(request: Request, principal: Principal, elder_id: uuid.UUID) -> ElderRead:
    session = await get_session(request)
    elder = await service.get(session=session, principal=principal, elder_id=elder_id)
    read = service.to_read(elder, clock.today())
    return await service.reveal(
        session=session,
        principal=principal,
        cipher=request.app.state.cipher,
        elder=elder,
        read=read,
    )


@router.patch("/{elder_id}", response_model=ElderRead, summary="Update contact and living data")
async def update_elder(
    elder_id: uuid.UUID,
    elder_in: ElderUpdate,
    session: SessionDep,
    cipher: CipherDep,
    principal: Principal = Writer,
) -> ElderRead:
    elder = await service.get(session=session, principal=principal, elder_id=elder_id)
    elder = await service.update(
        session=session, principal=principal, cipher=cipher, elder=elder, elder_in=elder_in
    )
    return service.to_read(elder, clock.today())


@router.get(
    "/{elder_id}/bed-eligibility",
    response_model=EligibilityRead,
    summary="Would a home care bed be granted today? Every failed condition is listed",
)
async def bed_eligibility(
    elder_id: uuid.UUID, session: SessionDep, principal: Principal = Lister
) -> EligibilityRead:
    elder = await service.get(session=session, principal=principal, elder_id=elder_id)
    policy, reasons = await beds_service.evaluate(session=session, elder=elder, day=clock.today())
    return EligibilityRead(
        elder_id=elder.id,
        eligible=not reasons,
        policy_code=policy.code,
        reasons=[ReasonRead(**r.as_dict()) for r in reasons],
    )
