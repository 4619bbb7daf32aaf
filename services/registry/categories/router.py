from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.registry.categories import service
from services.registry.categories.schemas import CategoryCreate, CategoryRead
from services.registry.elders import service as elders
from shared import clock
from shared.auth import Principal, Role, require_roles
from shared.pagination import Cursor, Limit, Page
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/elders/{elder_id}/categories", tags=["categories"])

Writer = require_roles(Role.admin, Role.street, Role.community)
Reader = require_roles(Role.admin, Role.street, Role.community, Role.org_admin, Role.service)


@router.post(
    "",
    status_code=201,
    response_model=CategoryRead,
    summary="Record a welfare category (特困, 低保, 残疾 …) with its validity period",
)
async def create_category(
    elder_id: uuid.UUID,
    category_in: CategoryCreate,
    session: SessionDep,
    principal: Principal = Writer,
) -> CategoryRead:
    elder = await elders.get(session=session, principal=principal, elder_id=elder_id)
    category = await service.create(session=session, elder=elder, category_in=category_in)
    return service.to_read(category, clock.today())


@router.get("", response_model=Page[CategoryRead], summary="All categories, past and current")
async def list_categories(
    elder_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[CategoryRead]:
    elder = await elders.get(session=session, principal=principal, elder_id=elder_id)
    today = clock.today()
    page = await service.list_for(session=session, elder=elder, cursor=cursor, limit=limit)
    return Page[CategoryRead](
        items=[service.to_read(c, today) for c in page.items], next_cursor=page.next_cursor
    )
