from __future__ import annotations

from fastapi import APIRouter, Query

from services.subsidy.common import Month, parse_month
from services.subsidy.reports import service
from services.subsidy.reports.schemas import MissedReport, WhatIfCreate, WhatIfRead
from shared.auth import Principal, Role, require_roles
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/reports", tags=["reports"])
Officer = require_roles(Role.admin, Role.street, Role.community)
Admin = require_roles(Role.admin)


@router.get(
    "/missed-entitlements",
    response_model=MissedReport,
    summary="应补尽补: per community, elders who qualify for a line they do not receive, and "
    "the missing step",
)
async def missed_entitlements(
    session: SessionDep,
    month: Month,
    principal: Principal = Officer,
    region: str | None = Query(None, pattern=r"^\d{2,12}$"),
) -> MissedReport:
    return MissedReport.model_validate(
        await service.missed_entitlements(
            session=session, principal=principal, month=parse_month(month), region=region
        )
    )


@router.post(
    "/what-if",
    response_model=WhatIfRead,
    summary="Budget what-if: a draft version's cost for a year over today's population, by "
    "month and fund, beside the version in force; who gains and who loses",
)
async def what_if(
    body: WhatIfCreate, session: SessionDep, principal: Principal = Admin
) -> WhatIfRead:
    return WhatIfRead.model_validate(
        await service.what_if(
            session=session,
            principal=principal,
            draft=body.draft,
            code=body.policy_code,
            version=body.version,
            year=body.year,
            baseline_code=body.baseline_code,
        )
    )
