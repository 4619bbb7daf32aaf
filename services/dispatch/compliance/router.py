from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from services.dispatch.access import Supervisor
from services.dispatch.compliance import service
from services.dispatch.compliance.schemas import BedCompliance, OrgCompliance
from shared.auth import Principal
from shared.errors import Unprocessable
from shared.i18n import T
from shared.pagination import Cursor, Limit
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/compliance", tags=["compliance"])

Month = Annotated[
    str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM (Asia/Shanghai)")
]


def parse_month(month: str) -> date:
    try:
        return date(int(month[:4]), int(month[5:7]), 1)
    except ValueError as exc:
        raise Unprocessable(
            T("月份无效", "invalid month"), errors=[("month", T("格式为 YYYY-MM", "YYYY-MM"))]
        ) from exc


@router.get(
    "/beds/{bed_id}",
    response_model=BedCompliance,
    summary="Hours, days with ≥ 1 h, ≥ 30 h met, daily-living kinds, excluded visits and why",
)
async def bed_compliance(
    bed_id: uuid.UUID, month: Month, session: SessionDep, principal: Principal = Supervisor
) -> BedCompliance:
    return await service.bed(
        session=session, principal=principal, bed_id=bed_id, month=parse_month(month)
    )


@router.get(
    "/orgs/{org_id}",
    response_model=OrgCompliance,
    summary="An organisation's beds short of the rule",
)
async def org_compliance(
    org_id: uuid.UUID,
    month: Month,
    session: SessionDep,
    principal: Principal = Supervisor,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> OrgCompliance:
    return await service.org(
        session=session,
        principal=principal,
        org_id=org_id,
        month=parse_month(month),
        cursor=cursor,
        limit=limit,
    )
