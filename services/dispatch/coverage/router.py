from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.dispatch.coverage import service
from services.dispatch.coverage.schemas import (
    BulkReport,
    BulkRequest,
    CoverageCheck,
    CoverageResult,
)
from shared.auth import Principal, StaffReader
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/coverage", tags=["service radius"])


@router.post(
    "/check",
    response_model=CoverageResult,
    summary="Is the elder within the station's service radius?",
)
async def check(
    body: CoverageCheck, request: Request, session: SessionDep, principal: Principal = StaffReader
) -> CoverageResult:
    return await service.check(
        session=session,
        principal=principal,
        station_id=body.station_id,
        elder_id=body.elder_id,
        travel=request.app.state.travel,
    )


@router.post(
    "/bulk",
    response_model=BulkReport,
    summary="Every active bed of an org or region: nearest station, minutes, beds outside",
)
async def bulk(
    body: BulkRequest, request: Request, session: SessionDep, principal: Principal = StaffReader
) -> BulkReport:
    return await service.bulk(
        session=session,
        principal=principal,
        org_id=body.org_id,
        region=body.region,
        travel=request.app.state.travel,
        include_within=body.include_within,
    )


@router.get(
    "/bulk.csv",
    response_class=Response,
    summary="The same report as CSV (every bed)",
    responses={200: {"content": {"text/csv": {}}}},
)
async def bulk_csv(
    request: Request,
    session: SessionDep,
    principal: Principal = StaffReader,
    org_id: uuid.UUID | None = None,
    region: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
) -> Response:
    report = await service.bulk(
        session=session,
        principal=principal,
        org_id=org_id,
        region=region,
        travel=request.app.state.travel,
        include_within=True,
    )
    return Response(
        service.to_csv(report.items),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="coverage.csv"'},
    )
