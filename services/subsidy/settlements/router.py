from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response

from services.subsidy.common import Quarter
from services.subsidy.settlements import service
from services.subsidy.settlements.models import Settlement
from services.subsidy.settlements.schemas import SettlementCreate, SettlementRead, SettlementRun
from shared.auth import Principal, Role, require_roles
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/settlements", tags=["settlements"])
Admin = require_roles(Role.admin)
Reader = require_roles(Role.admin, Role.street, Role.community, Role.org_admin)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.post(
    "",
    status_code=201,
    response_model=SettlementRun,
    summary="Settle a quarter with every organisation owed (lapses the quarter's unspent vouchers)",
)
async def settle(
    body: SettlementCreate, session: SessionDep, principal: Principal = Admin
) -> SettlementRun:
    rows, n, fen = await service.settle(
        session=session, principal=principal, quarter=body.quarter, org_id=body.org_id
    )
    return SettlementRun(
        quarter=body.quarter,
        settlements=[SettlementRead.model_validate(s) for s in rows],
        vouchers_lapsed=n,
        lapsed_fen=fen,
    )


@router.get("", response_model=Page[SettlementRead], summary="Settlements (an org sees its own)")
async def list_settlements(
    session: SessionDep,
    principal: Principal = Reader,
    quarter: Quarter | None = None,
    org_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[SettlementRead]:
    stmt = service.readable(principal)
    if quarter:
        stmt = stmt.where(Settlement.quarter == quarter)
    if org_id:
        stmt = stmt.where(Settlement.org_id == org_id)
    return await paginate(
        session,
        stmt,
        key=Settlement.id,
        cursor=cursor,
        limit=limit,
        read=SettlementRead.model_validate,
    )


@router.get("/{settlement_id}", response_model=SettlementRead)
async def get_settlement(
    settlement_id: uuid.UUID, session: SessionDep, principal: Principal = Reader
) -> SettlementRead:
    return SettlementRead.model_validate(
        await service.get(session=session, principal=principal, settlement_id=settlement_id)
    )


@router.get(
    "/{settlement_id}/report",
    summary="Reconciliation report: vouchers issued, redemptions with their visits, direct "
    "subsidies, amounts by fund",
    responses={
        200: {
            "description": "the report as CSV (default) or as an Excel workbook",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                XLSX: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
    response_class=Response,
)
async def settlement_report(
    settlement_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Reader,
    format: Literal["csv", "xlsx"] = "csv",
) -> Response:
    settlement = await service.get(
        session=session, principal=principal, settlement_id=settlement_id
    )
    report = await service.report(session=session, settlement=settlement)
    name = f"settlement-{settlement.quarter}-{settlement.org_id}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "xlsx":
        return Response(service.to_xlsx(report), media_type=XLSX, headers=headers)
    return Response(service.to_csv(report), media_type="text/csv; charset=utf-8", headers=headers)
