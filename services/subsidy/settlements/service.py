"""Quarterly settlement with each organisation (篇七: 按季度结算; 002: 每季度拨付), from the
ledger: what its ``org_payable`` account gained in the quarter's periods — redemptions of
vouchers against verified visits and direct subsidies, less reversals — is paid out in one
posting (org_payable → disbursed). The reconciliation report (CSV, XLSX) lists every
voucher issued to the elders it served, every redemption with its visit, every direct line,
and the amounts by fund."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.common import month_text, quarter_bounds
from services.subsidy.ledger import service as ledger
from services.subsidy.ledger.models import Entry, Posting
from services.subsidy.ledger.service import Draft, Leg
from services.subsidy.policies.engine import month_bounds
from services.subsidy.settlements.models import Settlement
from services.subsidy.vouchers import service as vouchers
from services.subsidy.vouchers.models import Redemption, Voucher
from shared import clock, readmodel, scoping
from shared.auth import Principal, Role
from shared.errors import NotFound
from shared.i18n import T, text
from shared.money import fen_to_yuan


async def settle(
    *, session: AsyncSession, principal: Principal, quarter: str, org_id: uuid.UUID | None
) -> tuple[list[Settlement], int, int]:
    first_month, last_month = quarter_bounds(quarter)
    today = clock.today()
    lapsed_n = lapsed_fen = 0
    month = first_month
    while month <= last_month:
        n, fen = await vouchers.lapse(
            session=session, principal=principal, month=month, today=today
        )
        lapsed_n, lapsed_fen = lapsed_n + n, lapsed_fen + fen
        month = _next(month)
    done = select(Settlement.org_id).where(Settlement.quarter == quarter)
    stmt = (
        select(Entry.org_id, Entry.fund, func.sum(Entry.amount_fen))
        .where(
            Entry.account == "org_payable",
            Entry.period >= first_month,
            Entry.period <= last_month,
            Entry.org_id.is_not(None),
            Entry.org_id.not_in(done),
        )
        .group_by(Entry.org_id, Entry.fund)
    )
    if org_id:
        stmt = stmt.where(Entry.org_id == org_id)
    if not scoping.sees_everything(principal):
        orgs = readmodel.orgs
        stmt = stmt.where(
            Entry.org_id.in_(select(orgs.c.id).where(scoping.org_scope(principal, orgs)))
        )
    owed: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
    for org, fund, amount in (await session.execute(stmt)).all():
        owed[org][fund] = int(amount)
    closed = await ledger.closed_periods(session)
    period = ledger.period_for(today.replace(day=1), closed)
    out = []
    for org, funds in sorted(owed.items(), key=lambda kv: str(kv[0])):
        payable = {f: a for f, a in funds.items() if a > 0}
        total = sum(payable.values())
        if total <= 0:
            continue
        legs = []
        for fund, amount in sorted(payable.items()):
            legs += [
                Leg("org_payable", fund, -amount, None, org),
                Leg("disbursed", fund, amount, None, org),
            ]
        posting_id = await ledger.post(
            session,
            Draft(
                kind="settlement",
                period=period,
                legs=legs,
                created_by=principal.sub,
                org_id=org,
                memo=f"settlement {quarter}",
            ),
        )
        s = Settlement(
            org_id=org,
            quarter=quarter,
            period_start=first_month,
            period_end=month_bounds(last_month)[1],
            amount_fen=total,
            by_fund=payable,
            posting_id=posting_id,
            created_by=principal.sub,
        )
        session.add(s)
        out.append(s)
    await session.flush()
    return out, lapsed_n, lapsed_fen


def _next(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def readable(principal: Principal):
    stmt = select(Settlement)
    if principal.role in (Role.org_admin, Role.caregiver):
        return stmt.where(Settlement.org_id == principal.org)
    if scoping.sees_everything(principal):
        return stmt
    orgs = readmodel.orgs
    return stmt.where(
        Settlement.org_id.in_(select(orgs.c.id).where(scoping.org_scope(principal, orgs)))
    )


async def get(
    *, session: AsyncSession, principal: Principal, settlement_id: uuid.UUID
) -> Settlement:
    row = await session.scalar(readable(principal).where(Settlement.id == settlement_id))
    if row is None:
        raise NotFound(T(f"未找到结算 {settlement_id}", f"settlement {settlement_id} not found"))
    return row


@dataclass
class Report:
    title: str
    sheets: list[tuple[str, list[str], list[list]]]  # name, header, rows


async def report(*, session: AsyncSession, settlement: Settlement) -> Report:
    first, last = settlement.period_start, settlement.period_end
    org = (
        await session.execute(
            select(readmodel.orgs.c.name).where(readmodel.orgs.c.id == settlement.org_id)
        )
    ).scalar()
    names = {}
    redemptions = list(
        await session.scalars(
            select(Redemption)
            .join(Posting, Posting.id == Redemption.posting_id)
            .where(
                Redemption.org_id == settlement.org_id,
                Posting.period >= first,
                Posting.period <= last,
            )
            .order_by(Redemption.service_day, Redemption.visit_id)
        )
    )
    direct = (
        await session.execute(
            select(
                Posting.kind,
                Posting.elder_id,
                Posting.entitlement_month,
                Posting.policy_code,
                Posting.rule,
                Entry.fund,
                Entry.amount_fen,
            )
            .join(Entry, Entry.posting_id == Posting.id)
            .where(
                Entry.account == "org_payable",
                Entry.org_id == settlement.org_id,
                Entry.period >= first,
                Entry.period <= last,
                Posting.kind.in_(("entitlement", "reversal")),
            )
            .order_by(Posting.entitlement_month, Posting.elder_id, Posting.rule)
        )
    ).all()
    elder_ids = {r.elder_id for r in redemptions} | {d[1] for d in direct if d[1]}
    if elder_ids:
        e = readmodel.elders
        for eid, name in (
            await session.execute(select(e.c.id, e.c.name).where(e.c.id.in_(elder_ids)))
        ).all():
            names[eid] = name
    issued = (
        list(
            await session.scalars(
                select(Voucher)
                .where(
                    Voucher.elder_id.in_({r.elder_id for r in redemptions}),
                    Voucher.month >= first,
                    Voucher.month <= last,
                )
                .order_by(Voucher.month, Voucher.elder_id)
            )
        )
        if redemptions
        else []
    )
    here: dict[uuid.UUID, int] = defaultdict(int)
    for r in redemptions:
        if r.voucher_id:
            here[r.voucher_id] += r.subsidy_fen
    by_fund: dict[str, int] = defaultdict(int)
    for r in redemptions:
        if r.subsidy_fen:
            by_fund[r.fund or "-"] += r.subsidy_fen
        if r.copay_fen:
            by_fund["self_pay"] += r.copay_fen
    for d in direct:
        by_fund[d[5]] += int(d[6])
    h = lambda zh, en: text(T(zh, en)) or en  # noqa: E731
    summary_rows = [[fund, fen_to_yuan(amount)] for fund, amount in sorted(by_fund.items())]
    summary_rows.append(
        [
            h("合计（不含自付）", "total (excluding self-pay)"),
            fen_to_yuan(sum(a for f, a in by_fund.items() if f != "self_pay")),
        ]
    )
    summary_rows.append(
        [h("本次结算拨付", "paid by this settlement"), fen_to_yuan(settlement.amount_fen)]
    )
    return Report(
        title=f"{org or settlement.org_id} {settlement.quarter}",
        sheets=[
            (
                h("汇总", "summary"),
                [h("资金来源", "fund"), h("金额（元）", "amount (yuan)")],
                summary_rows,
            ),
            (
                h("消费券核销", "redemptions"),
                [
                    h("上门服务", "visit"),
                    h("服务日期", "service day"),
                    h("老人", "elder"),
                    h("姓名", "name"),
                    h("价格", "price"),
                    h("消费券支付", "voucher"),
                    h("个人自付", "co-pay"),
                    h("资金来源", "fund"),
                ],
                [
                    [
                        str(r.visit_id),
                        str(r.service_day),
                        str(r.elder_id),
                        names.get(r.elder_id, ""),
                        fen_to_yuan(r.price_fen),
                        fen_to_yuan(r.subsidy_fen),
                        fen_to_yuan(r.copay_fen),
                        r.fund or "",
                    ]
                    for r in redemptions
                ],
            ),
            (
                h("直接补贴", "direct subsidies"),
                [
                    h("类型", "kind"),
                    h("月份", "month"),
                    h("老人", "elder"),
                    h("姓名", "name"),
                    h("政策", "policy"),
                    h("规则", "rule"),
                    h("资金来源", "fund"),
                    h("金额（元）", "amount (yuan)"),
                ],
                [
                    [
                        d[0],
                        month_text(d[2]) if d[2] else "",
                        str(d[1] or ""),
                        names.get(d[1], ""),
                        d[3] or "",
                        d[4] or "",
                        d[5],
                        fen_to_yuan(int(d[6])),
                    ]
                    for d in direct
                ],
            ),
            (
                h("消费券发放", "vouchers issued"),
                [
                    h("消费券", "voucher"),
                    h("月份", "month"),
                    h("老人", "elder"),
                    h("发放", "issued"),
                    h("已核销", "redeemed"),
                    h("在本机构核销", "redeemed here"),
                    h("失效", "lapsed"),
                ],
                [
                    [
                        str(v.id),
                        month_text(v.month),
                        str(v.elder_id),
                        fen_to_yuan(v.amount_fen),
                        fen_to_yuan(v.redeemed_fen),
                        fen_to_yuan(here.get(v.id, 0)),
                        fen_to_yuan(v.lapsed_fen),
                    ]
                    for v in issued
                ],
            ),
        ],
    )


def to_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([report.title])
    for name, header, rows in report.sheets:
        writer.writerow([])
        writer.writerow([name])
        writer.writerow(header)
        writer.writerows(rows)
    # a BOM so that spreadsheet programs open the Chinese text as UTF-8
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for name, header, rows in report.sheets:
        sheet = book.create_sheet(title=name[:31])
        sheet.append([report.title])
        sheet.append(header)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
