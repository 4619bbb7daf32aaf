from __future__ import annotations

from fastapi import APIRouter

from services.dispatch.catalogue import service
from services.dispatch.catalogue.schemas import CategoryRead, ItemCreate, ItemRead, ItemUpdate
from shared.auth import Principal, Role, StaffReader, require_roles
from shared.pagination import Cursor, Limit, Page
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/catalogue", tags=["service catalogue"])

Admin = require_roles(Role.admin)


@router.get("", response_model=Page[CategoryRead], summary="Service categories and their items")
async def list_catalogue(
    session: SessionDep,
    principal: Principal = StaffReader,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[CategoryRead]:
    return await service.categories(session=session, cursor=cursor, limit=limit)


@router.post("/items", status_code=201, response_model=ItemRead, summary="Add a service item")
async def create_item(
    item_in: ItemCreate, session: SessionDep, principal: Principal = Admin
) -> ItemRead:
    return ItemRead.model_validate(await service.create_item(session=session, item_in=item_in))


@router.patch(
    "/items/{code}", response_model=ItemRead, summary="Rename, re-qualify or retire an item"
)
async def update_item(
    code: str, item_in: ItemUpdate, session: SessionDep, principal: Principal = Admin
) -> ItemRead:
    return ItemRead.model_validate(
        await service.update_item(session=session, code=code, item_in=item_in)
    )
