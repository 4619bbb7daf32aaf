"""Drawing a quarter's callback sample, recording callbacks, reading the tally — the
callbacks' SQL, all of it (see ``__init__``)."""

from __future__ import annotations

import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import yaml
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.callbacks.models import CallbackItem, CallbackSample
from services.subsidy.callbacks.schemas import (
    CommunityRead,
    Outcome,
    RecordCreate,
    SampleCreate,
    SampleRead,
)
from services.subsidy.common import SERVICE, quarter_bounds
from services.subsidy.runs.models import DecisionLine
from shared import audit, clock, readmodel, scoping
from shared.auth import Principal
from shared.errors import Conflict, NotFound, Unprocessable
from shared.i18n import T

DONE = (Outcome.confirmed.value, Outcome.discrepancy.value)


@dataclass(frozen=True)
class CallbackPolicy:
    rate_pct: int
    reference: str


@cache
def policy() -> CallbackPolicy:
    raw = yaml.safe_load((Path(__file__).parent / "policy.yaml").read_text(encoding="utf-8"))
    rate = int(raw["rate_pct"])
    if not 0 < rate <= 100:
        raise ValueError("callbacks policy.yaml: rate_pct must be in 1..100")
    return CallbackPolicy(rate_pct=rate, reference=str(raw["reference"]))


def required(population: int, rate_pct: int) -> int:
    """Callbacks a community of ``population`` subsidised elders needs: at least the rate,
    so rounded up (5 % of 30 is 2, not 1)."""
    return math.ceil(population * rate_pct / 100)


def readable(principal: Principal) -> ColumnElement[bool]:
    """A region officer sees the samples drawn over their region, inside it, or around it
    (a street's sample is its communities' work list) — of the elders in it, only those
    in their own scope (``items_statement``, ``record``)."""
    if principal.region is None:
        return true()
    return scoping.prefixes_nest(CallbackSample.region, principal.region)


def _region(principal: Principal, requested: str | None) -> str:
    mine = principal.region or ""
    region = requested if requested is not None else mine
    if not principal.in_region(region):
        raise Unprocessable(
            T(f"地区 {region} 不在你的管辖范围 {mine} 内", f"region {region} is outside {mine}"),
            errors=[("region", T("应在你的管辖范围内", "must be inside your region"))],
        )
    return region


def _ranked(region: str, quarter: str, seed: str) -> Select:
    """Per community, the quarter's paid elders in their seeded order, with the community's
    size: what the sample takes its first ``required`` from (the region is inside the
    drawing officer's, so it is their scope too)."""
    lo, hi = quarter_bounds(quarter)
    line = DecisionLine.__table__
    e = readmodel.elders
    paid = (
        select(line.c.elder_id, e.c.residence_region.label("community"))
        .join(e, e.c.id == line.c.elder_id)
        .where(
            line.c.month.between(lo, hi),
            line.c.amount_fen > 0,
            line.c.reversed_by.is_(None),
            scoping.region_clause(e, bindparam("sample_region", region)) if region else true(),
        )
        .distinct()
        .cte("paid")
    )
    order = func.md5(literal(seed) + cast(paid.c.elder_id, String))
    return select(
        paid.c.elder_id,
        paid.c.community,
        func.row_number().over(partition_by=paid.c.community, order_by=order).label("rank"),
        func.count().over(partition_by=paid.c.community).label("n"),
    )


def _quarter_ended(quarter: str) -> None:
    _, last_month = quarter_bounds(quarter)
    end = (last_month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    if end >= clock.today():
        raise Unprocessable(
            T(
                f"{quarter} 尚未结束：抽样在季度结束后从其已发放的补助中抽取",
                f"{quarter} has not ended: a sample is drawn from a whole quarter's payments",
            ),
            errors=[("quarter", T("应为已结束的季度", "must be a quarter that has ended"))],
        )


async def draw(
    *, session: AsyncSession, principal: Principal, body: SampleCreate
) -> tuple[CallbackSample, bool]:
    """The quarter's sample for the region, drawn now — or the one already drawn. A quarter
    is drawn once per place: a second draw over a region inside or around one already drawn
    is refused, so nobody can draw again until a sample suits them. The whole population is
    kept in its seeded order (``drawn`` marks the sample), so replacements follow the order
    fixed at the draw, whatever changes afterwards."""
    _quarter_ended(body.quarter)
    region = _region(principal, body.region)
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('subsidy-callbacks:' || :q))"),
        {"q": body.quarter},
    )
    existing = (
        await session.scalars(
            select(CallbackSample).where(
                CallbackSample.quarter == body.quarter,
                scoping.prefixes_nest(CallbackSample.region, region),
            )
        )
    ).all()
    for other in existing:
        if other.region == region:
            return other, False
    if existing:
        raise Conflict(
            T(
                f"{body.quarter} 已对 {existing[0].region or '全部地区'} 抽样，"
                "不能再对重叠地区抽样",
                f"{body.quarter} was already drawn for {existing[0].region or 'every region'}: "
                "an overlapping region cannot be drawn again",
            ),
            slug="callback-sample-overlaps",
        )
    rate = policy().rate_pct
    sample = CallbackSample(
        quarter=body.quarter,
        region=region,
        rate_pct=rate,
        seed=secrets.token_hex(16),
        population=0,
        drawn_by=principal.sub,
    )
    session.add(sample)
    await session.flush()
    ranked = _ranked(region, body.quarter, sample.seed).subquery()
    everyone = select(
        literal(sample.id),
        ranked.c.elder_id,
        ranked.c.community,
        ranked.c.n,
        ranked.c.rank,
        ranked.c.rank <= func.ceil(ranked.c.n * rate / 100.0),
    )
    result = await session.execute(
        insert(CallbackItem).from_select(
            ["sample_id", "elder_id", "community", "community_population", "rank", "drawn"],
            everyone,
        )
    )
    sample.population = result.rowcount
    await session.flush()
    return sample, True


async def get(*, session: AsyncSession, principal: Principal, sample_id: uuid.UUID):
    sample = await session.scalar(
        select(CallbackSample).where(CallbackSample.id == sample_id, readable(principal))
    )
    if sample is None:
        raise NotFound(T(f"未找到回访抽样 {sample_id}", f"callback sample {sample_id} not found"))
    return sample


async def read(session: AsyncSession, principal: Principal, sample: CallbackSample) -> SampleRead:
    """The tally, per community, of the elders in ``principal``'s scope (a community officer
    sees its own part of a street's sample)."""
    i = CallbackItem
    rows = (
        await session.execute(
            select(
                i.community,
                func.max(i.community_population),
                func.count().filter(i.drawn),
                func.count().filter(i.outcome.in_(DONE)),
                func.count().filter(i.outcome == Outcome.discrepancy.value),
                func.count().filter(i.outcome == Outcome.unreachable.value),
            )
            .where(i.sample_id == sample.id, scoping.by_elder(principal, i.elder_id))
            .group_by(i.community)
            .order_by(i.community)
        )
    ).all()
    communities = []
    for community, population, sampled, done, _, _ in rows:
        need = required(population, sample.rate_pct)
        communities.append(
            CommunityRead(
                community=community,
                population=population,
                required=need,
                sampled=sampled,
                done=done,
                meets_rule=done >= need,
            )
        )
    return SampleRead(
        id=sample.id,
        quarter=sample.quarter,
        region=sample.region,
        rate_pct=sample.rate_pct,
        seed=sample.seed,
        population=sum(c.population for c in communities),
        sampled=sum(r[2] for r in rows),
        done=sum(r[3] for r in rows),
        discrepancies=sum(r[4] for r in rows),
        unreachable=sum(r[5] for r in rows),
        meets_rule=all(c.meets_rule for c in communities),
        reference=policy().reference,
        communities=communities,
        drawn_by=sample.drawn_by,
        drawn_at=sample.drawn_at,
    )


def items_statement(principal: Principal, sample: CallbackSample, pending: bool | None) -> Select:
    stmt = select(CallbackItem).where(
        CallbackItem.sample_id == sample.id,
        CallbackItem.drawn,
        scoping.by_elder(principal, CallbackItem.elder_id),
    )
    if pending is True:
        stmt = stmt.where(
            or_(CallbackItem.outcome.is_(None), CallbackItem.outcome == "unreachable")
        )
    elif pending is False:
        stmt = stmt.where(CallbackItem.outcome.in_(DONE))
    return stmt


async def _replace(session: AsyncSession, sample: CallbackSample, item: CallbackItem) -> None:
    """An elder not reached is replaced by the community's next elder in the order fixed at
    the draw, so the quota can still be met and nobody chooses who is called instead."""
    nxt = await session.scalar(
        select(CallbackItem)
        .where(
            CallbackItem.sample_id == sample.id,
            CallbackItem.community == item.community,
            ~CallbackItem.drawn,
        )
        .order_by(CallbackItem.rank)
        .limit(1)
    )
    if nxt is not None:
        nxt.drawn = True


async def record(
    *, session: AsyncSession, principal: Principal, sample: CallbackSample, body: RecordCreate
) -> CallbackItem:
    """The written record of one callback. An unreachable elder may be tried again (the
    record is replaced; the first time, the next elder in the seeded order joins the sample);
    a callback made stands — a correction is a note beside it, never an
    edit of what was written."""
    await scoping.require_elder(session, principal, body.elder_id)
    # one record at a time per sample: replacements are taken in order, never twice
    await session.execute(
        select(CallbackSample.id).where(CallbackSample.id == sample.id).with_for_update()
    )
    item = await session.scalar(
        select(CallbackItem).where(
            CallbackItem.sample_id == sample.id,
            CallbackItem.elder_id == body.elder_id,
            CallbackItem.drawn,
        )
    )
    if item is None:
        raise Unprocessable(
            T("该老人不在本次回访抽样中", "this elder is not in the sample"),
            errors=[("elder_id", T("应为抽中的老人", "must be a sampled elder"))],
        )
    lo, _ = quarter_bounds(sample.quarter)
    if body.done_on < lo or body.done_on > clock.today():
        raise Unprocessable(
            T(
                "回访日期应在本季度开始之后且不晚于今天",
                "done_on must be in or after the quarter and not in the future",
            ),
            errors=[("done_on", T("日期超出范围", "date out of range"))],
        )
    if item.outcome in DONE:
        raise Conflict(
            T("该老人的回访已记录", "a callback for this elder is already recorded"),
        )
    if body.outcome is Outcome.unreachable and item.outcome is None:
        await _replace(session, sample, item)
    item.method = body.method.value
    item.outcome = body.outcome.value
    item.done_on = body.done_on
    item.note = body.note
    item.recorded_by = principal.sub
    item.recorded_at = datetime.now(UTC)
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="callback.record",
        resource_type="callback_sample",
        resource_id=sample.id,
    )
    await session.flush()
    return item
