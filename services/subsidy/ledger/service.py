"""Postings and balances. Every movement is a balanced posting (its entries sum to zero);
nothing is edited — a correction is a reversal that names the posting it reverses. The
database enforces all three (migration 0020), this module only composes postings.

Accounts (``ledger.models.ACCOUNTS``): a fund pays out (negative balance = spent); an elder's
``allowance`` holds unspent vouchers; an organisation's ``org_payable`` is what it is owed
until a settlement moves it to ``disbursed``; ``self_pay`` is the elder's co-payment;
``receivable``/``recoveries`` record what fraud must repay.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.common import month_text
from services.subsidy.ledger.models import Entry, LedgerPeriod, Posting, PostingKind
from shared import clock
from shared.auth import Principal
from shared.db import new_id
from shared.errors import Conflict
from shared.i18n import T


@dataclass(frozen=True, slots=True)
class Leg:
    account: str
    fund: str
    amount_fen: int
    elder_id: uuid.UUID | None = None
    org_id: uuid.UUID | None = None


@dataclass
class Draft:
    kind: PostingKind
    period: date
    legs: list[Leg]
    created_by: str
    entitlement_month: date | None = None
    run_id: uuid.UUID | None = None
    reverses: uuid.UUID | None = None
    elder_id: uuid.UUID | None = None
    org_id: uuid.UUID | None = None
    policy_code: str | None = None
    rule: str | None = None
    memo: str | None = None
    id: uuid.UUID = field(default_factory=new_id)

    def row(self) -> dict:
        return {
            "id": self.id,
            "period": self.period,
            "entitlement_month": self.entitlement_month,
            "kind": self.kind,
            "run_id": self.run_id,
            "reverses": self.reverses,
            "elder_id": self.elder_id,
            "org_id": self.org_id,
            "policy_code": self.policy_code,
            "rule": self.rule,
            "memo": self.memo,
            "created_by": self.created_by,
        }

    def entry_rows(self) -> list[dict]:
        return [
            {
                "posting_id": self.id,
                "period": self.period,
                "account": leg.account,
                "fund": leg.fund,
                "elder_id": leg.elder_id,
                "org_id": leg.org_id,
                "amount_fen": leg.amount_fen,
            }
            for leg in self.legs
        ]


def grant_legs(
    *, pay_to: str, fund: str, amount: int, elder_id: uuid.UUID, org_id: uuid.UUID | None
) -> list[Leg]:
    """A granted line: the fund pays the organisation, or loads the elder's vouchers."""
    payee = (
        Leg("allowance", fund, amount, elder_id, None)
        if pay_to == "voucher"
        else Leg("org_payable", fund, amount, elder_id, org_id)
    )
    return [Leg("fund", fund, -amount, elder_id, None), payee]


def reversed_legs(legs: Sequence[Leg]) -> list[Leg]:
    return [Leg(x.account, x.fund, -x.amount_fen, x.elder_id, x.org_id) for x in legs]


async def closed_periods(session: AsyncSession) -> set[date]:
    return set(
        await session.scalars(select(LedgerPeriod.month).where(LedgerPeriod.closed_at.is_not(None)))
    )


def period_for(month: date, closed: set[date]) -> date:
    """Postings for ``month`` go to that month, or — once it is closed — to the current
    month (a correction of a closed month is booked where the books are still open)."""
    if month not in closed:
        return month
    current = clock.today().replace(day=1)
    if current in closed or current < month:
        raise Conflict(
            T(
                f"账期 {month_text(month)} 已关账，当前账期也已关闭",
                f"period {month_text(month)} is closed and so is the current one",
            ),
            slug="period-closed",
        )
    return current


async def post(session: AsyncSession, draft: Draft) -> uuid.UUID:
    """Write one posting (its entries in one statement: the balance trigger checks it)."""
    await session.execute(insert(Posting).values(**draft.row()))
    # one multi-row INSERT, not executemany: the balance trigger runs per statement
    await session.execute(insert(Entry).values(draft.entry_rows()))
    return draft.id


async def entries_of(session: AsyncSession, posting_id: uuid.UUID) -> list[Leg]:
    rows = await session.execute(
        select(Entry.account, Entry.fund, Entry.amount_fen, Entry.elder_id, Entry.org_id).where(
            Entry.posting_id == posting_id
        )
    )
    return [Leg(*r) for r in rows.all()]


async def reverse(
    session: AsyncSession, *, posting_id: uuid.UUID, period: date, created_by: str, memo: str
) -> uuid.UUID:
    original = await session.get(Posting, posting_id)
    if original is None:
        raise Conflict(T("要冲销的记账不存在", "the posting to reverse does not exist"))
    legs = await entries_of(session, posting_id)
    return await post(
        session,
        Draft(
            kind="reversal",
            period=period,
            legs=reversed_legs(legs),
            created_by=created_by,
            entitlement_month=original.entitlement_month,
            reverses=posting_id,
            elder_id=original.elder_id,
            org_id=original.org_id,
            policy_code=original.policy_code,
            rule=original.rule,
            memo=memo,
        ),
    )


async def close(session: AsyncSession, *, month: date, principal: Principal) -> LedgerPeriod:
    period = await session.get(LedgerPeriod, month, with_for_update=True)
    if period is not None and period.closed_at is not None:
        return period
    if period is None:
        period = LedgerPeriod(month=month)
        session.add(period)
    period.closed_at = datetime.now(UTC)
    period.closed_by = principal.sub
    await session.flush()
    return period


async def balance_rows(session: AsyncSession, *, where: Sequence, group: Sequence) -> list:
    stmt = select(*group, func.sum(Entry.amount_fen)).where(*where).group_by(*group)
    return list((await session.execute(stmt.order_by(*group))).all())
