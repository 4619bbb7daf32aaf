from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.dispatch.access import Manager
from services.dispatch.chains import service
from services.dispatch.chains.schemas import OrgSettingsIn, OrgSettingsRead
from shared.auth import Principal, StaffReader
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/orgs/{org_id}/dispatch-settings", tags=["escalation chains"])


@router.get(
    "", response_model=OrgSettingsRead, summary="The org's escalation chain and GPS tolerance"
)
async def get_settings(
    org_id: uuid.UUID, session: SessionDep, principal: Principal = StaffReader
) -> OrgSettingsRead:
    await service.require_org(session, principal, org_id)
    return await service.get(session=session, org_id=org_id)


@router.put(
    "",
    response_model=OrgSettingsRead,
    summary="Replace the chain (snapshotted onto each new dispatch) and/or the GPS tolerance",
)
async def put_settings(
    org_id: uuid.UUID, body: OrgSettingsIn, session: SessionDep, principal: Principal = Manager
) -> OrgSettingsRead:
    await service.require_org(session, principal, org_id)
    return await service.put(session=session, principal=principal, org_id=org_id, body=body)
