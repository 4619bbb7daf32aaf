from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from sqlalchemy import select

from services.subsidy.common import Code, Month, parse_month
from services.subsidy.ledger import service
from services.subsidy.ledger.models import Entry, Posting
from services.subsidy.ledger.schemas import BalanceRead, EntryRead, PeriodRead
from shared import scoping
from shared.auth import Principal, Role, require_roles
from shared.errors import Forbidden
from shared.i18n import T
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
Admin = require_roles(Role.admin)
Reader = require_roles(Role.admin, Role.street, Role.community, Role.org_admin)


def _scope(principal: Principal):
    """Orgs see their own accounts' entries; region roles entries about elders they see;
    fund-wide totals only to admins."""
    if principal.role is Role.org_admin:
        return Entry.org_id == principal.org
    if scoping.sees_everything(principal):
        return None
    return scoping.by_elder(principal, Entry.elder_id)


@router.get(
    "/balances",
    response_model=Page[BalanceRead],
    summary="Balances per account: by fund, or per elder / per organisation (paged by id)",
)
async def balances(
    session: SessionDep,
    principal: Principal = Reader,
    by: Literal["fund", "elder", "org"] = "fund",
    elder_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = None,
    fund: Code | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[BalanceRead]:
    where = []
    scope = _scope(principal)
    if scope is not None:
        where.append(scope)
    if by == "fund" and scope is not None and principal.role is not Role.admin:
        raise Forbidden(T("资金总额仅管理员可见", "fund totals are for admins"))
    if elder_id:
        where.append(Entry.elder_id == elder_id)
    if org_id:
        where.append(Entry.org_id == org_id)
    if fund:
        where.append(Entry.fund == fund)
    if by == "fund":
        rows = await service.balance_rows(session, where=where, group=(Entry.account, Entry.fund))
        items = [BalanceRead(account=r[0], fund=r[1], balance_fen=int(r[2])) for r in rows]
        return Page[BalanceRead](items=items, next_cursor=None)  # a handful of funds: one page
    holder = Entry.elder_id if by == "elder" else Entry.org_id
    accounts = (
        ("allowance", "receivable") if by == "elder" else ("org_payable", "disbursed", "receivable")
    )
    where += [Entry.account.in_(accounts), holder.is_not(None)]
    # page over the holders (elders or orgs), then total each one's accounts
    holders_stmt = select(holder).where(*where).group_by(holder)
    page = await paginate(
        session, holders_stmt, key=holder, cursor=cursor, limit=limit, scalars=False
    )
    ids = [getattr(r, holder.key) for r in page.items]
    rows = (
        await service.balance_rows(
            session, where=[*where, holder.in_(ids)], group=(holder, Entry.account, Entry.fund)
        )
        if ids
        else []
    )
    items = [
        BalanceRead(
            account=r[1],
            fund=r[2],
            balance_fen=int(r[3]),
            **({"elder_id": r[0]} if by == "elder" else {"org_id": r[0]}),
        )
        for r in rows
    ]
    return Page[BalanceRead](items=items, next_cursor=page.next_cursor)


@router.get("/entries", response_model=Page[EntryRead], summary="Ledger entries, oldest first")
async def entries(
    session: SessionDep,
    principal: Principal = Reader,
    elder_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = None,
    period: Month | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[EntryRead]:
    stmt = select(
        Entry.id,
        Entry.posting_id,
        Entry.period,
        Entry.account,
        Entry.fund,
        Entry.elder_id,
        Entry.org_id,
        Entry.amount_fen,
        Entry.created_at,
        Posting.kind,
        Posting.entitlement_month,
        Posting.rule,
        Posting.reverses,
    ).join(Posting, Posting.id == Entry.posting_id)
    scope = _scope(principal)
    if scope is not None:
        stmt = stmt.where(scope)
    if elder_id:
        stmt = stmt.where(Entry.elder_id == elder_id)
    if org_id:
        stmt = stmt.where(Entry.org_id == org_id)
    if period:
        stmt = stmt.where(Entry.period == parse_month(period))
    return await paginate(
        session,
        stmt,
        key=Entry.id,
        cursor=cursor,
        limit=limit,
        scalars=False,
        read=lambda r: EntryRead.model_validate(dict(r._mapping)),
    )


@router.post(
    "/periods/{month}/close",
    response_model=PeriodRead,
    summary="Close an accounting month: the database refuses every later write to it",
)
async def close_period(month: str, session: SessionDep, principal: Principal = Admin) -> PeriodRead:
    period = await service.close(session, month=parse_month(month), principal=principal)
    return PeriodRead.model_validate(period)
