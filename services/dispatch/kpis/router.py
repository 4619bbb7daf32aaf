from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.dispatch.access import Supervisor
from services.dispatch.compliance.router import Month, parse_month
from services.dispatch.kpis import service
from services.dispatch.kpis.schemas import OrgKpis
from shared.auth import Principal
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/kpis", tags=["KPIs"])


@router.get(
    "/orgs/{org_id}",
    response_model=OrgKpis,
    summary="Answered ≤ 60 s (97.5 %), ≤ 180 s (99 %), on site ≤ 45 min (90 %)",
)
async def org_kpis(
    org_id: uuid.UUID, month: Month, session: SessionDep, principal: Principal = Supervisor
) -> OrgKpis:
    return await service.org(
        session=session, principal=principal, org_id=org_id, month=parse_month(month)
    )
