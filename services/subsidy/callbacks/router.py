from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from services.subsidy.callbacks import service
from services.subsidy.callbacks.models import CallbackItem
from services.subsidy.callbacks.schemas import ItemRead, RecordCreate, SampleCreate, SampleRead
from shared.auth import Principal, Role, require_roles
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/callback-samples", tags=["callbacks"])
Officer = require_roles(Role.admin, Role.street, Role.community)


@router.post(
    "",
    status_code=201,
    response_model=SampleRead,
    responses={200: {"model": SampleRead, "description": "the quarter's sample, drawn before"}},
    summary="Draw the quarter's callback sample (回访抽查): at least 5 % per community",
)
async def draw_sample(
    body: SampleCreate, response: Response, session: SessionDep, principal: Principal = Officer
) -> SampleRead:
    sample, drawn = await service.draw(session=session, principal=principal, body=body)
    if not drawn:
        response.status_code = 200
    return await service.read(session, principal, sample)


@router.get("/{sample_id}", response_model=SampleRead, summary="A sample and its tally")
async def get_sample(
    sample_id: uuid.UUID, session: SessionDep, principal: Principal = Officer
) -> SampleRead:
    sample = await service.get(session=session, principal=principal, sample_id=sample_id)
    return await service.read(session, principal, sample)


@router.get("/{sample_id}/items", response_model=Page[ItemRead], summary="The sampled elders")
async def list_items(
    sample_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Officer,
    pending: bool | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ItemRead]:
    sample = await service.get(session=session, principal=principal, sample_id=sample_id)
    return await paginate(
        session,
        service.items_statement(principal, sample, pending),
        key=CallbackItem.elder_id,
        cursor=cursor,
        limit=limit,
        read=ItemRead.model_validate,
    )


@router.post(
    "/{sample_id}/records",
    status_code=201,
    response_model=ItemRead,
    summary="The written record of one callback (书面回访记录), audited",
)
async def record_callback(
    sample_id: uuid.UUID, body: RecordCreate, session: SessionDep, principal: Principal = Officer
) -> ItemRead:
    sample = await service.get(session=session, principal=principal, sample_id=sample_id)
    item = await service.record(session=session, principal=principal, sample=sample, body=body)
    return ItemRead.model_validate(item)
