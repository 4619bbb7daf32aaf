"""Family caregivers (家庭照护者) of an elder."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.caregivers.models import FamilyCaregiver
from services.registry.caregivers.schemas import FamilyCaregiverCreate, FamilyCaregiverUpdate
from services.registry.elders.models import Elder
from shared.errors import NotFound
from shared.i18n import T
from shared.pagination import Page, paginate
from shared.pii import PiiCipher, mask_phone


async def create(
    *, session: AsyncSession, cipher: PiiCipher, elder: Elder, caregiver_in: FamilyCaregiverCreate
) -> FamilyCaregiver:
    caregiver = FamilyCaregiver(
        elder_id=elder.id,
        name=caregiver_in.name,
        relation=caregiver_in.relation,
        phone_enc=cipher.encrypt(caregiver_in.phone, context=b"family_caregiver.phone"),
        phone_masked=mask_phone(caregiver_in.phone),
        lives_with=caregiver_in.lives_with,
        trained_on=caregiver_in.trained_on,
    )
    session.add(caregiver)
    await session.flush()
    return caregiver


async def list_for(
    *, session: AsyncSession, elder: Elder, cursor: str | None, limit: int
) -> Page[FamilyCaregiver]:
    stmt = select(FamilyCaregiver).where(FamilyCaregiver.elder_id == elder.id)
    return await paginate(session, stmt, key=FamilyCaregiver.id, cursor=cursor, limit=limit)


async def update(
    *,
    session: AsyncSession,
    elder: Elder,
    caregiver_id: uuid.UUID,
    caregiver_in: FamilyCaregiverUpdate,
) -> FamilyCaregiver:
    caregiver = await session.get(FamilyCaregiver, caregiver_id)
    if caregiver is None or caregiver.elder_id != elder.id:
        raise NotFound(
            T(f"未找到家庭照护者 {caregiver_id}", f"family caregiver {caregiver_id} not found")
        )
    for name, value in caregiver_in.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(caregiver, name, value)
    await session.flush()
    return caregiver


async def has_coresident(*, session: AsyncSession, elder: Elder) -> bool:
    found = await session.scalar(
        select(FamilyCaregiver.id)
        .where(
            FamilyCaregiver.elder_id == elder.id,
            FamilyCaregiver.lives_with.is_(True),
            FamilyCaregiver.active.is_(True),
        )
        .limit(1)
    )
    return found is not None
