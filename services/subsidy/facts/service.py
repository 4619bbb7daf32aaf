"""The facts rules read, loaded in bulk — the one place subsidy's SQL over other services'
data lives.

Registry facts come through ``shared.readmodel`` (elders, assessments, categories, beds and
their lifecycle events, modifications, the residence history of elders who moved); verified
visits through ``shared.visits_readmodel`` (dispatch's view, read-only); subsidy's own
records (earlier subsidies, approved applications, fraud flags, what earlier months granted)
from its own schema. One query per
kind of fact for the whole scope, on the raw asyncpg connection (a district is 100 000
elders; per-elder queries would be the run's whole cost).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy import ColumnElement, Date, Select, bindparam, func, or_, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.applications.models import Application as ApplicationRow
from services.subsidy.benefits.models import Benefit as BenefitRow
from services.subsidy.fraud.models import FraudFlag
from services.subsidy.policies.facts import (
    Application,
    Assessment,
    Bed,
    Benefit,
    Category,
    ElderFacts,
    Grant,
    Modification,
    Move,
    Span,
    Visit,
)
from services.subsidy.runs.models import CurrentDecision, DecisionLine
from services.subsidy.runs.models import Decision as DecisionRow
from services.subsidy.runs.models import Run as RunRow
from shared import clock, scoping
from shared import readmodel as rm
from shared.visits_readmodel import verified_visits as vv

_DIALECT = postgresql.dialect(paramstyle="numeric_dollar")


@dataclass
class Scope:
    """Which elders: a region prefix (hukou or residence), explicit ids, or everyone (a run
    takes a region's ids once, then loads them chunk by chunk by their ids)."""

    region: str | None = None
    elder_ids: list[uuid.UUID] | None = None

    def shape(self) -> str:
        if self.elder_ids is not None:
            return "ids"
        return "region" if self.region else "all"


@dataclass
class World:
    elders: list[ElderFacts]
    barred_orgs: dict[uuid.UUID, date] = field(default_factory=dict)
    visits_available: bool = True


def _region_filter() -> ColumnElement[bool]:
    """Elders of the region now — and those who moved away since ``since`` (the window's
    start) from a place in it: the days they were still here are the region's to pay. A
    place counts when it was in force on some day of the window (from ``since`` to
    ``end``), not years before."""
    e, h = rm.elders, rm.residence_history
    later = h.alias("later")
    prefix = bindparam("region")
    movers = select(h.c.elder_id).where(h.c.kind == "move", h.c.valid_from >= bindparam("since"))
    superseded = (
        select(later.c.id)
        .where(
            later.c.elder_id == h.c.elder_id,
            later.c.valid_from > h.c.valid_from,
            later.c.valid_from <= bindparam("since"),
        )
        .exists()
    )
    were_here = select(h.c.elder_id).where(
        h.c.elder_id.in_(movers),
        scoping.region_clause(h, prefix),
        h.c.valid_from <= bindparam("end"),
        ~superseded,
    )
    # and those a run of this region (or one around or inside it) paid for the window's
    # months, whatever the registry now says: a move recorded late, dated before the month,
    # takes them out of the region — their run must still reverse what it paid
    # (only an elder who moved can have left: the scan starts from the few moves)
    cd, d, r = CurrentDecision.__table__, DecisionRow.__table__, RunRow.__table__
    mv = h.alias("moved")
    paid_here = (
        select(cd.c.elder_id)
        .join(d, d.c.id == cd.c.decision_id)
        .join(r, r.c.id == d.c.run_id)
        .where(
            cd.c.month >= func.date_trunc("month", bindparam("since")).cast(Date),
            cd.c.month <= bindparam("end"),
            cd.c.total_fen != 0,
            r.c.region.startswith(prefix) | prefix.startswith(r.c.region),
            cd.c.elder_id.in_(select(mv.c.elder_id).where(mv.c.kind == "move")),
        )
    )
    # the platform's one region rule (hukou or residence under the prefix), now and then
    return or_(scoping.region_clause(e, prefix), e.c.id.in_(were_here), e.c.id.in_(paid_here))


def _elder_filter(shape: str) -> ColumnElement[bool]:
    e = rm.elders
    if shape == "ids":
        return e.c.id == func.any(bindparam("ids"))
    return _region_filter() if shape == "region" else true()


def _in_scope(column: ColumnElement, shape: str) -> ColumnElement[bool]:
    if shape == "ids":
        return column == func.any(bindparam("ids"))
    if shape == "region":
        return column.in_(select(rm.elders.c.id).where(_elder_filter(shape)))
    return true()


@cache
def _statements(shape: str) -> dict[str, tuple[str, tuple[str, ...], dict[str, Any]]]:
    e, a, c, b, ev, m = (
        rm.elders,
        rm.assessments,
        rm.categories,
        rm.beds,
        rm.bed_events,
        rm.modifications,
    )
    end, start = bindparam("end"), bindparam("start")
    stmts: dict[str, Select] = {
        "elders": select(
            e.c.id,
            e.c.name,
            e.c.birth_date,
            e.c.hukou_region,
            e.c.residence_region,
            e.c.living_arrangement,
            e.c.lives_at_home,
            e.c.deceased_on,
        )
        .where(_elder_filter(shape))
        .order_by(e.c.id),
        "assessments": select(
            a.c.elder_id, a.c.level, a.c.assessed_on, a.c.valid_until, a.c.dementia
        ).where(_in_scope(a.c.elder_id, shape), a.c.assessed_on <= end),
        "categories": select(
            c.c.elder_id,
            c.c.code,
            c.c.valid_from,
            c.c.valid_to,
            c.c.grade,
            c.c.receives_nursing_subsidy,
        ).where(
            _in_scope(c.c.elder_id, shape),
            c.c.valid_from <= end,
            or_(c.c.valid_to.is_(None), c.c.valid_to >= start),
        ),
        "beds": select(
            b.c.id,
            b.c.elder_id,
            b.c.org_id,
            b.c.policy_code,
            b.c.started_on,
            b.c.suspended_on,
            b.c.terminated_on,
            b.c.status,
        ).where(_in_scope(b.c.elder_id, shape), b.c.started_on.is_not(None), b.c.started_on <= end),
        "bed_events": select(ev.c.bed_id, ev.c.to_status, ev.c.effective_on, ev.c.created_at)
        .select_from(ev.join(b, b.c.id == ev.c.bed_id))
        .where(_in_scope(b.c.elder_id, shape), ev.c.effective_on <= end),
        "modifications": select(b.c.elder_id, m.c.bed_id, m.c.kind, m.c.cost_fen, m.c.done_on)
        .select_from(m.join(b, b.c.id == m.c.bed_id))
        .where(_in_scope(b.c.elder_id, shape), m.c.done_on <= end),
        "visits": select(
            vv.c.visit_id, vv.c.elder_id, vv.c.org_id, vv.c.service_day, vv.c.item_codes
        ).where(
            _in_scope(vv.c.elder_id, shape), vv.c.service_day >= start, vv.c.service_day <= end
        ),
    }
    # The residence history, only of elders with a move after ``since`` (the window's start,
    # or today if earlier: a move recorded ahead has not reached the current columns yet).
    # Everyone else was at their current place on every day of the window: no rows, no work.
    h = rm.residence_history
    movers = select(h.c.elder_id).where(
        h.c.kind == "move", h.c.valid_from >= bindparam("since"), _in_scope(h.c.elder_id, shape)
    )
    stmts["moves"] = select(
        h.c.elder_id, h.c.valid_from, h.c.hukou_region, h.c.residence_region
    ).where(h.c.elder_id.in_(movers), h.c.valid_from <= end)
    bt, ap, ff, dl = (
        BenefitRow.__table__,
        ApplicationRow.__table__,
        FraudFlag.__table__,
        DecisionLine.__table__,
    )
    stmts["benefits"] = select(bt.c.elder_id, bt.c.code, bt.c.amount_fen, bt.c.received_on).where(
        _in_scope(bt.c.elder_id, shape), bt.c.received_on <= end
    )
    stmts["applications"] = select(ap.c.elder_id, ap.c.policy_code, ap.c.decided_on).where(
        _in_scope(ap.c.elder_id, shape), ap.c.status == "approved", ap.c.decided_on <= end
    )
    stmts["fraud"] = select(ff.c.subject, ff.c.elder_id, ff.c.org_id, ff.c.effective_from).where(
        or_(ff.c.subject == "org", _in_scope(ff.c.elder_id, shape))
    )
    stmts["ids"] = select(rm.elders.c.id).where(_elder_filter(shape)).order_by(rm.elders.c.id)
    # What earlier months granted for once-only lines (one-time, annual): the current lines.
    stmts["grants"] = (
        select(dl.c.elder_id, dl.c.policy_code, dl.c.rule, dl.c.month, func.sum(dl.c.amount_fen))
        .where(
            _in_scope(dl.c.elder_id, shape),
            dl.c.reversed_by.is_(None),
            or_(dl.c.kind == "one_time", dl.c.kind == "annual"),
            dl.c.month < start,
            dl.c.month >= bindparam("grants_from"),
        )
        .group_by(dl.c.elder_id, dl.c.policy_code, dl.c.rule, dl.c.month)
    )
    out = {}
    for name, stmt in stmts.items():
        compiled = stmt.compile(dialect=_DIALECT)
        # literals in the statement (a status, a kind) are bound parameters too
        fixed = {k: v for k, v in compiled.params.items() if v is not None}
        out[name] = (compiled.string, tuple(compiled.positiontup or ()), fixed)
    return out


def _params(names: tuple[str, ...], fixed: dict[str, Any], values: dict[str, Any]) -> list[Any]:
    return [values[n] if n in values else fixed[n] for n in names]


async def raw_connection(session: AsyncSession) -> asyncpg.Connection:
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection  # type: ignore[return-value]


async def elder_ids(
    conn: asyncpg.Connection, scope: Scope, *, start: date, end: date
) -> list[uuid.UUID]:
    """Every elder id in scope for days ``start`` … ``end``, in id order (a run loads
    them chunk by chunk)."""
    sql, names, fixed = _statements(scope.shape())["ids"]
    values = {"ids": scope.elder_ids, "region": scope.region, "since": _since(start), "end": end}
    return [r[0] for r in await conn.fetch(sql, *_params(names, fixed, values))]


async def visits_view_exists(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass('dispatch.verified_visits') IS NOT NULL"))


def _since(start: date) -> date:
    # A move recorded ahead has not reached the current columns yet: from today at the latest.
    return min(start, clock.today())


async def load(
    conn: asyncpg.Connection,
    scope: Scope,
    *,
    start: date,
    end: date,
    grants_from: date | None = None,
) -> World:
    """Facts of every elder in ``scope`` that matter for days ``start`` … ``end``."""
    shape = scope.shape()
    stmts = _statements(shape)
    values: dict[str, Any] = {
        "ids": scope.elder_ids,
        "region": scope.region,
        "start": start,
        "end": end,
        "grants_from": grants_from or date(start.year - 30, 1, 1),
        "since": _since(start),
    }

    async def fetch(name: str) -> list[asyncpg.Record]:
        sql, names, fixed = stmts[name]
        return await conn.fetch(sql, *_params(names, fixed, values))

    elder_rows = await fetch("elders")
    assessments: dict[uuid.UUID, list[Assessment]] = defaultdict(list)
    for r in await fetch("assessments"):
        assessments[r[0]].append(Assessment(r[1], r[2], r[3], r[4]))
    categories: dict[uuid.UUID, list[Category]] = defaultdict(list)
    for r in await fetch("categories"):
        categories[r[0]].append(Category(r[1], r[2], r[3], r[4], r[5]))
    events: dict[uuid.UUID, list[tuple[date, Any, str]]] = defaultdict(list)
    for r in await fetch("bed_events"):
        events[r[0]].append((r[2], r[3], r[1]))
    beds: dict[uuid.UUID, list[Bed]] = defaultdict(list)
    for r in await fetch("beds"):
        beds[r[1]].append(Bed(r[0], r[2], bed_spans(r, events.get(r[0])), r[3]))
    mods: dict[uuid.UUID, list[Modification]] = defaultdict(list)
    for r in await fetch("modifications"):
        mods[r[0]].append(Modification(r[1], r[2], r[3], r[4]))
    visits: dict[uuid.UUID, list[Visit]] = defaultdict(list)
    visits_available = await visits_view_exists(conn)
    if visits_available:
        for r in await fetch("visits"):
            visits[r[1]].append(Visit(r[0], r[2], r[3], tuple(r[4] or ())))
    benefits: dict[uuid.UUID, list[Benefit]] = defaultdict(list)
    for r in await fetch("benefits"):
        benefits[r[0]].append(Benefit(r[1], r[2], r[3]))
    applications: dict[uuid.UUID, list[Application]] = defaultdict(list)
    for r in await fetch("applications"):
        applications[r[0]].append(Application(r[1], r[2]))
    disqualified: dict[uuid.UUID, date] = {}
    barred: dict[uuid.UUID, date] = {}
    for r in await fetch("fraud"):
        target, key = (disqualified, r[1]) if r[0] == "elder" else (barred, r[2])
        target[key] = min(r[3], target.get(key, r[3]))
    moves: dict[uuid.UUID, list[Move]] = defaultdict(list)
    for r in await fetch("moves"):
        moves[r[0]].append(Move(r[1], r[2], r[3]))
    grants: dict[uuid.UUID, list[Grant]] = defaultdict(list)
    for r in await fetch("grants"):
        grants[r[0]].append(Grant(r[1], r[2], r[3], int(r[4])))
    elders = [
        ElderFacts(
            elder_id=r[0],
            name=r[1],
            birth_date=r[2],
            hukou_region=r[3],
            residence_region=r[4],
            living_arrangement=r[5],
            lives_at_home=r[6],
            deceased_on=r[7],
            categories=tuple(categories.get(r[0], ())),
            assessments=tuple(assessments.get(r[0], ())),
            beds=tuple(beds.get(r[0], ())),
            modifications=tuple(mods.get(r[0], ())),
            benefits=tuple(benefits.get(r[0], ())),
            applications=tuple(applications.get(r[0], ())),
            visits=tuple(visits.get(r[0], ())),
            grants=tuple(grants.get(r[0], ())),
            disqualified_on=disqualified.get(r[0]),
            moves=tuple(sorted(moves[r[0]], key=_valid_from)) if r[0] in moves else (),
        )
        for r in elder_rows
    ]
    return World(elders, barred, visits_available)


def _valid_from(m: Move) -> date:
    return m.valid_from


def bed_spans(bed: Any, events: Iterable[tuple[date, Any, str]] | None) -> tuple[Span, ...]:
    """Active days from the lifecycle events: active from ``effective_on``; a suspension or
    termination takes effect on its day (the bed is not active that day)."""
    if not events:
        start = bed[4]
        stop = bed[6] or bed[5]
        return (Span(start, stop - timedelta(days=1) if stop else None),)
    spans: list[Span] = []
    open_from: date | None = None
    for day, _, status in sorted(events, key=lambda e: (e[0], e[1])):
        if status == "active":
            if open_from is None:
                open_from = day
        elif open_from is not None:
            if day > open_from:
                spans.append(Span(open_from, day - timedelta(days=1)))
            open_from = None
    if open_from is not None:
        spans.append(Span(open_from, None))
    return tuple(spans)
