from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.registry.caregivers import service
from services.registry.caregivers.schemas import (
    FamilyCaregiverCreate,
    FamilyCaregiverRead,
    FamilyCaregiverUpdate,
)
from services.registry.deps import CipherDep
from services.registry.elders import service as elders
from shared.auth import CaseWriter, Principal, ScopedReader
from shared.pagination import Cursor, Limit, Page
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/elders/{elder_id}/family-caregivers", tags=["family caregivers"])

Writer = CaseWriter
Reader = ScopedReader


@router.post(
    "",
    status_code=201,
    response_model=FamilyCaregiverRead,
    summary="Add a family caregiver (relation, phone, lives with the elder, training)",
)
async def create_family_caregiver(
    elder_id: uuid.UUID,
    caregiver_in: FamilyCaregiverCreate,
    session: SessionDep,
    cipher: CipherDep,
    principal: Principal = Writer,
) -> FamilyCaregiverRead:
    elder = await elders.get(session=session, principal=principal, elder_id=elder_id)
    caregiver = await service.create(
        session=session, cipher=cipher, elder=elder, caregiver_in=caregiver_in
    )
    return FamilyCaregiverRead.model_validate(caregiver)


@router.get("", response_model=Page[FamilyCaregiverRead], summary="The elder's family caregivers")
async def list_family_caregivers(
    elder_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[FamilyCaregiverRead]:
    elder = await elders.get(session=session, principal=principal, elder_id=elder_id)
    page = await service.list_for(session=session, elder=elder, cursor=cursor, limit=limit)
    return Page[FamilyCaregiverRead](
        items=[FamilyCaregiverRead.model_validate(c) for c in page.items],
        next_cursor=page.next_cursor,
    )


@router.patch(
    "/{caregiver_id}",
    response_model=FamilyCaregiverRead,
    summary="Change co-residence, activity or training (bed eligibility follows)",
)
async def update_family_caregiver(
    elder_id: uuid.UUID,
    caregiver_id: uuid.UUID,
    caregiver_in: FamilyCaregiverUpdate,
    session: SessionDep,
    principal: Principal = Writer,
) -> FamilyCaregiverRead:
    elder = await elders.get(session=session, principal=principal, elder_id=elder_id)
    caregiver = await service.update(
        session=session, elder=elder, caregiver_id=caregiver_id, caregiver_in=caregiver_in
    )
    return FamilyCaregiverRead.model_validate(caregiver)
