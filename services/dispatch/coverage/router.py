from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.dispatch.access import Supervisor
from services.dispatch.coverage import service
from services.dispatch.coverage.schemas import (
    BulkReport,
    BulkRequest,
    CoverageCheck,
    CoverageResult,
)
from shared.auth import Principal, StaffReader
from shared.pagination import Cursor
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/coverage", tags=["service radius"])

# A report page may be long: the whole district is computed for every page anyway.
BulkLimit = Annotated[int, Query(ge=1, le=10_000, description="page size")]


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
    body: BulkRequest,
    request: Request,
    session: SessionDep,
    principal: Principal = Supervisor,
    cursor: Cursor = None,
    limit: BulkLimit = 1000,
) -> Response:
    table = await service.bulk(
        session=session,
        principal=principal,
        org_id=body.org_id,
        region=body.region,
        travel=request.app.state.travel,
    )
    report = service.report(table, include_within=body.include_within, cursor=cursor, limit=limit)
    # Serialised straight from plain data: thousands of rows need no model round trip
    # (the response model above still documents the shape).
    return Response(orjson.dumps(report), media_type="application/json")


@router.get(
    "/bulk.csv",
    response_class=Response,
    summary="The same report as CSV (every bed)",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def bulk_csv(
    request: Request,
    session: SessionDep,
    principal: Principal = Supervisor,
    org_id: uuid.UUID | None = None,
    region: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
) -> Response:
    table = await service.bulk(
        session=session,
        principal=principal,
        org_id=org_id,
        region=region,
        travel=request.app.state.travel,
    )
    return Response(
        service.to_csv(table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="coverage.csv"'},
    )
