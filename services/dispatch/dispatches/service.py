"""Emergency dispatch: the hand-off from telemetry, candidates, the escalation chain, accept
and decline, arrival, resolution and cancellation. Every step is a ``DispatchStep`` row."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    String,
    Text,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by, insert
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import directory
from services.dispatch import policy as dispatch_policy
from services.dispatch.chains.models import OrgSettings
from services.dispatch.coverage.travel import EstimateTravel, TravelModel
from services.dispatch.dispatches import chain as chains
from services.dispatch.dispatches.models import Dispatch, DispatchStep
from services.dispatch.dispatches.schemas import (
    DispatchCancel,
    DispatchCreate,
    DispatchRead,
    StepRead,
)
from services.dispatch.notifications import service as notifications
from services.dispatch.outbox import service as outbox
from services.dispatch.visits.models import Visit
from shared import clock, scoping
from shared import readmodel as rm
from shared.auth import Principal, Role
from shared.db import new_id
from shared.errors import Conflict, Forbidden, NotFound
from shared.i18n import T

TIMER_CHANNEL = "dispatch_timers"  # payload: when the new timer is due (epoch seconds)


def timer_payload(due: datetime) -> str:
    return f"{due.timestamp():.3f}"


ACTIVE = ("offered", "accepted", "declined", "escalated", "arrived")
ADVICE_120 = T("建议立即拨打 120 急救电话", "advise calling 120 (emergency medical services) now")


def scope_clause(principal: Principal) -> ColumnElement[bool]:
    role = principal.role
    if role is Role.caregiver:
        mine = select(DispatchStep.dispatch_id).where(DispatchStep.staff_id == principal.staff)
        return or_(Dispatch.staff_id == principal.staff, Dispatch.id.in_(mine))
    if role is Role.org_admin:
        return Dispatch.org_id == principal.org
    if role in (Role.admin, Role.street, Role.community, Role.service):
        return scoping.by_elder(principal, Dispatch.elder_id)
    return false()  # family members see nothing operational (they are told by notification)


def readable_statement(principal: Principal) -> Select[tuple[Dispatch]]:
    return select(Dispatch).where(scope_clause(principal))


async def get(
    *, session: AsyncSession, principal: Principal, dispatch_id: uuid.UUID, for_update: bool = False
) -> Dispatch:
    stmt = readable_statement(principal).where(Dispatch.id == dispatch_id)
    if for_update:
        stmt = stmt.with_for_update()
    d = await session.scalar(stmt)
    if d is None:
        raise NotFound(T(f"未找到派单 {dispatch_id}", f"dispatch {dispatch_id} not found"))
    return d


async def of_staff(
    *, session: AsyncSession, staff_id: uuid.UUID
) -> tuple[list[Dispatch], list[Dispatch]]:
    """A caregiver's handset view: dispatches offered to it now, and those it took and has
    not finished (accepted or on site)."""
    rows = list(
        await session.scalars(
            select(Dispatch)
            .where(
                Dispatch.staff_id == staff_id,
                Dispatch.status.in_(("offered", "accepted", "arrived")),
            )
            .order_by(Dispatch.id)
        )
    )
    return [d for d in rows if d.status == "offered"], [d for d in rows if d.status != "offered"]


# ── the hand-off's reads ─────────────────────────────────────────────────────────────────
# Built once (the hand-off is a latency target: p99 < 25 ms from telemetry's POST to the
# committed offer), run with parameters.


def _responders(org_id: Any) -> Select[Any]:
    """On-duty, insured responders of ``org_id`` who are not busy with an emergency, each
    with where they were last seen since ``since`` (an EVV fix), else their station — as
    three arrays (id, lat, lon)."""
    s, st, v = rm.staff, rm.stations, Visit

    def last(at: Any, lat: Any, lon: Any, name: str) -> Any:
        return (
            select(at.label("t"), lat.label("lat"), lon.label("lon"))
            .where(v.staff_id == s.c.id, at >= bindparam("since"), lat.is_not(None))
            .order_by(at.desc())
            .limit(1)
            .lateral(name)
        )

    fin = last(v.check_in_at, v.check_in_lat, v.check_in_lon, "last_in")
    fout = last(v.check_out_at, v.check_out_lat, v.check_out_lon, "last_out")
    later_out = func.coalesce(fout.c.t > fin.c.t, fin.c.t.is_(None))
    lat = func.coalesce(case((later_out, fout.c.lat), else_=fin.c.lat), st.c.lat)
    lon = func.coalesce(case((later_out, fout.c.lon), else_=fin.c.lon), st.c.lon)
    busy = select(Dispatch.staff_id).where(
        Dispatch.status.in_(("accepted", "arrived")), Dispatch.staff_id.is_not(None)
    )
    return (
        select(
            func.array_agg(aggregate_order_by(s.c.id, s.c.id)).label("staff_ids"),
            func.array_agg(aggregate_order_by(lat, s.c.id)).label("staff_lats"),
            func.array_agg(aggregate_order_by(lon, s.c.id)).label("staff_lons"),
        )
        .select_from(s)
        .outerjoin(st, st.c.id == s.c.station_id)
        .outerjoin(fin, true())
        .outerjoin(fout, true())
        .where(
            s.c.org_id == org_id,
            s.c.active.is_(True),
            s.c.on_duty.is_(True),
            s.c.role == func.any(bindparam("roles", type_=ARRAY(String))),
            s.c.insured_until >= bindparam("today"),
            s.c.id.not_in(busy),
        )
    )


def _handoff_statement() -> Select[Any]:
    """One statement for everything the hand-off reads: the elder (where the community
    officer finds them, who of the family to tell), the elder's open bed (active first)
    with its org, home, the org's own chain and the bed's station, and that org's
    responders (``_responders``). One row; none for an elder the registry does not know."""
    b, e, st = rm.beds, rm.elders, rm.stations
    bed = (
        select(
            b.c.id.label("bed_id"),
            b.c.org_id,
            OrgSettings.chain,
            st.c.lat.label("station_lat"),
            st.c.lon.label("station_lon"),
        )
        .outerjoin(OrgSettings, OrgSettings.org_id == b.c.org_id)
        .outerjoin(st, st.c.id == b.c.station_id)
        .where(b.c.elder_id == e.c.id, b.c.status.in_(scoping.OPEN_BED_STATUSES))
        .order_by((b.c.status == "active").desc())
        .limit(1)
        .lateral("bed")
    )
    responders = _responders(bed.c.org_id).lateral("responders")
    return (
        select(
            e.c.lat.label("elder_lat"),
            e.c.lon.label("elder_lon"),
            e.c.zone,
            e.c.residence_region,
            e.c.address,
            notifications.family_of(e.c.id).label("family"),
            bed,
            responders,
        )
        .select_from(e)
        .outerjoin(bed, true())
        .outerjoin(responders, true())
        .where(e.c.id == bindparam("elder_id"))
    )


_HANDOFF = _handoff_statement()


async def candidates(*, bed: Any, travel: TravelModel) -> list[dict[str, Any]]:
    """On-duty, insured, qualified staff of the bed's org within the radius, nearest first by
    travel time from where they were last seen today (or their station, or the bed's
    station); busy responders (an accepted dispatch not yet resolved) are left out."""
    if bed.elder_lat is None or bed.elder_lon is None:
        return []
    policy = dispatch_policy.load()
    ids, points = [], []
    fallback = (bed.station_lat, bed.station_lon) if bed.station_lat is not None else None
    for sid, lat, lon in zip(
        bed.staff_ids or [], bed.staff_lats or [], bed.staff_lons or [], strict=True
    ):
        where = (lat, lon) if lat is not None and lon is not None else fallback
        if where is not None:
            ids.append(sid)
            points.append(where)
    if not ids:
        return []
    home = np.array([[bed.elder_lat, bed.elder_lon]])
    zone = bed.zone or "urban"
    if isinstance(travel, EstimateTravel):
        minutes = travel.matrix_now(np.array(points), home, zone)[:, 0]
    else:
        minutes = (await travel.matrix(np.array(points), home, zone=zone)).minutes[:, 0]
    limit = policy.limit_minutes(zone)
    ranked = sorted((float(m), str(i)) for i, m in zip(ids, minutes, strict=True) if m <= limit)[
        : policy.max_candidates
    ]
    return [{"staff_id": i, "minutes": round(m, 1), "declined": False} for m, i in ranked]


def _state(d: Any) -> chains.State:
    offered = None
    if d.status == "offered" and d.staff_id is not None:
        offered = next(
            (k for k, c in enumerate(d.candidates) if c["staff_id"] == str(d.staff_id)), None
        )
    return chains.State(
        status=d.status,
        step_index=d.step_index,
        round=d.round,
        next_candidate=d.next_candidate,
        offered=offered,
        declined=frozenset(k for k, c in enumerate(d.candidates) if c.get("declined")),
    )


def _payload(d: Any, **extra: Any) -> dict[str, Any]:
    return {
        "dispatch_id": str(d.id),
        "alert_id": str(d.alert_id),
        "elder_id": str(d.elder_id),
        "kind": d.kind,
        "raised_at": d.raised_at.isoformat(),
        **extra,
    }


def _step(d: Any, action: str, at: datetime, **kw: Any) -> dict[str, Any]:
    staff = kw.get("staff_id")
    return {
        "dispatch_id": d.id,
        "at": at,
        "action": action,
        "staff_id": uuid.UUID(str(staff)) if staff else None,
        "actor": kw.get("actor", "system"),
        "detail": kw.get("detail") or {},
    }


def _message(d: Any, event: str, recipient_kind: str, **payload: Any) -> dict[str, Any]:
    return {
        "dispatch_id": d.id,
        "event": event,
        "recipient_kind": recipient_kind,
        "payload": _payload(d, **payload),
    }


@dataclass
class Decision:
    """What the chain decided for one dispatch, as rows to write: the dispatch's new
    fields, its steps, and the messages to people."""

    fields: dict[str, Any]
    steps: list[dict[str, Any]]
    messages: list[dict[str, Any]]


@dataclass
class Lookups:
    """Who to tell, fetched for a whole batch of decisions at once."""

    family: dict[uuid.UUID, list[dict[str, Any]]]
    homes: dict[uuid.UUID, Any]

    @classmethod
    async def fetch(
        cls, session: AsyncSession, wanted: list[tuple[Any, list[chains.Effect]]]
    ) -> Lookups:
        fam = {d.elder_id for d, eff in wanted if any(e.action in _FAMILY for e in eff)}
        com = {d.elder_id for d, eff in wanted if any(e.action == "notify_community" for e in eff)}
        return cls(
            family=await notifications.family_recipients(session=session, elder_ids=fam),
            homes=await directory.addresses(session=session, elder_ids=com),
        )


_FAMILY = ("notify_family", "advise_120")


def decide(
    d: Any,
    state: chains.State,
    effects: list[chains.Effect],
    now: datetime,
    lookups: Lookups,
    *,
    actor: str = "system",
) -> Decision:
    """Rows for what the chain decided (a pure function of the dispatch and the lookups).
    Every path that leaves nobody acting ends in a person being told: the desk hears when
    the family has no one on file and when the chain is worked through."""
    cands = [dict(c) for c in d.candidates]
    fields: dict[str, Any] = {}
    steps: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    advice = {"advice": ADVICE_120.zh, "advice_en": ADVICE_120.en}
    for effect in effects:
        staff = cands[effect.candidate]["staff_id"] if effect.candidate is not None else None
        detail: dict[str, Any] = {}
        if effect.action == "declined" and effect.candidate is not None:
            cands[effect.candidate]["declined"] = True
            fields["declined_at"] = now
        if effect.action == "offered":
            fields["offered_at"] = now
            minutes = cands[effect.candidate]["minutes"]  # type: ignore[index]
            messages.append(_message(d, "offer", "caregiver", staff_id=staff, minutes=minutes))
        elif effect.action in _FAMILY:
            family = lookups.family.get(d.elder_id, [])
            extra = advice if effect.action == "advise_120" else {}
            messages += [_message(d, effect.action, "family", recipient=p, **extra) for p in family]
            detail["recipients"] = len(family)
            if effect.action == "advise_120":
                messages.append(_message(d, "advise_120", "desk", **advice))
            elif not family:
                messages.append(_message(d, "no_family_contact", "desk"))
        elif effect.action == "notify_community":
            home = lookups.homes.get(d.elder_id)
            messages.append(
                _message(
                    d,
                    "notify_community",
                    "community",
                    region=home.residence_region if home else None,
                    address=home.address if home else None,
                )
            )
        elif effect.action == "exhausted":
            # the call tree is worked through and nobody has taken it: the desk has it now
            messages.append(_message(d, "exhausted", "desk", **advice))
        if effect.action in ("notify_family", "notify_community", "advise_120", "exhausted"):
            fields["escalated_at"] = d.escalated_at or fields.get("escalated_at") or now
        steps.append(
            _step(
                d,
                effect.action,
                now,
                staff_id=staff,
                actor=actor if effect.action == "declined" else "system",
                detail=detail,
            )
        )
    fields.update(
        candidates=cands,
        status=state.status,
        step_index=state.step_index,
        round=state.round,
        next_candidate=state.next_candidate,
        staff_id=uuid.UUID(cands[state.offered]["staff_id"]) if state.offered is not None else None,
        due_at=now + timedelta(seconds=state.due_in_s) if state.due_in_s is not None else None,
    )
    return Decision(fields, steps, messages)


async def _apply(session: AsyncSession, decided: list[tuple[Dispatch, Decision]]) -> None:
    """Write decisions for loaded dispatches: their updates in one batch, every step and
    message in one statement each, one NOTIFY per channel."""
    steps, messages, dues = [], [], []
    for d, decision in decided:
        for name, value in decision.fields.items():
            setattr(d, name, value)
        steps += decision.steps
        messages += decision.messages
        if d.due_at is not None:
            dues.append(d.due_at)
    if steps:
        await session.execute(insert(DispatchStep.__table__).values(steps))
    await notifications.enqueue_many(session=session, rows=messages)
    await session.flush()
    if dues:
        await session.execute(select(func.pg_notify(TIMER_CHANNEL, timer_payload(min(dues)))))


# ── the hand-off's write: the dispatch, its steps, its messages and both NOTIFYs at once ────

_D_COLUMNS = (
    "id",
    "alert_id",
    "elder_id",
    "kind",
    "raised_at",
    "received_at",
    "bed_id",
    "org_id",
    "status",
    "chain",
    "step_index",
    "round",
    "candidates",
    "next_candidate",
    "staff_id",
    "due_at",
    "offered_at",
    "escalated_at",
)


def _create_statement() -> Select[Any]:
    t = Dispatch.__table__
    row = (
        insert(t)
        .values({c: bindparam(f"d_{c}", type_=t.c[c].type) for c in _D_COLUMNS})
        .on_conflict_do_nothing(index_elements=["alert_id"])
        .returning(t.c.id)
        .cte("d")
    )
    st = (
        func.unnest(
            bindparam("s_action", type_=ARRAY(String)),
            bindparam("s_staff", type_=ARRAY(PgUUID(as_uuid=True))),
            bindparam("s_detail", type_=ARRAY(Text)),
        )
        .table_valued("action", "staff_id", "detail", with_ordinality="n")
        .render_derived(name="s")
    )
    steps = (
        insert(DispatchStep.__table__)
        .from_select(
            ["dispatch_id", "at", "action", "staff_id", "actor", "detail"],
            select(
                row.c.id,
                bindparam("d_received_at", type_=DateTime(timezone=True)),
                st.c.action,
                st.c.staff_id,
                literal("system"),
                cast(st.c.detail, JSONB),
            )
            .select_from(row)
            .join(st, true())
            .order_by(st.c.n),
        )
        .cte("steps")
    )
    msgs = notifications.from_arrays(row.c.id, source=row).cte("messages")
    due = bindparam("due_notice", type_=String)  # timer_payload, or NULL without a timer
    return select(
        select(row.c.id).scalar_subquery().label("id"),
        select(func.pg_notify(TIMER_CHANNEL, due)).where(due.is_not(None)).scalar_subquery(),
        func.pg_notify(notifications.CHANNEL, ""),
    ).add_cte(steps, msgs)


_CREATE = _create_statement()


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def create(
    *, session: AsyncSession, body: DispatchCreate, travel: TravelModel
) -> tuple[Any, bool]:
    """The hand-off, idempotent on ``alert_id`` itself. An elder without a bed or without a
    candidate still gets a dispatch: it goes straight to the call tree. Returns (dispatch
    or read, created).

    Two statements in all: what the hand-off reads (``_HANDOFF``) and one write of the
    dispatch with the chain's first decision, its steps and messages (``_CREATE``)."""
    now = datetime.now(UTC)
    policy = dispatch_policy.load()
    facts = (
        await session.execute(
            _HANDOFF,
            {
                "elder_id": body.elder_id,
                "roles": sorted(policy.responder_roles),
                "today": clock.today(),
                "since": now - timedelta(hours=12),
            },
        )
    ).first()
    bed = facts if facts is not None and facts.bed_id is not None else None
    chain = (bed.chain if bed is not None else None) or policy.default_chain
    cands = await candidates(bed=bed, travel=travel) if bed else []
    head = _Head(
        id=new_id(),
        alert_id=body.alert_id,
        elder_id=body.elder_id,
        kind=body.kind,
        raised_at=body.raised_at,
        candidates=cands,
    )
    state, effects = chains.start(chain, len(cands))
    lookups = Lookups(
        family={body.elder_id: facts.family} if facts is not None else {},
        homes={body.elder_id: facts} if facts is not None else {},
    )
    decision = decide(head, state, effects, now, lookups)
    received = _step(
        head,
        "received",
        now,
        detail={"bed_id": str(bed.bed_id) if bed else None, "candidates": len(cands)},
    )
    steps = [received, *decision.steps]
    values = {
        "id": head.id,
        "alert_id": body.alert_id,
        "elder_id": body.elder_id,
        "kind": body.kind,
        "raised_at": body.raised_at,
        "received_at": now,
        "bed_id": bed.bed_id if bed else None,
        "org_id": bed.org_id if bed else None,
        "chain": chain,
        "offered_at": None,
        "escalated_at": None,
        **{k: v for k, v in decision.fields.items() if k != "declined_at"},
    }
    made = (
        await session.execute(
            _CREATE,
            {
                **{f"d_{c}": values[c] for c in _D_COLUMNS},
                "s_action": [x["action"] for x in steps],
                "s_staff": [x["staff_id"] for x in steps],
                "s_detail": [_json(x["detail"]) for x in steps],
                **notifications.arrays(decision.messages),
                "due_notice": timer_payload(values["due_at"]) if values["due_at"] else None,
            },
        )
    ).scalar()
    if made is None:  # this alert's dispatch exists (a repeat, or a concurrent hand-off won)
        existing = await session.scalar(select(Dispatch).where(Dispatch.alert_id == body.alert_id))
        return existing, False
    read = DispatchRead.model_validate(
        {
            **values,
            "visit_id": None,
            "accepted_at": None,
            "declined_at": None,
            "arrived_at": None,
            "resolved_at": None,
            "cancelled_at": None,
            "steps": [StepRead.model_validate(x) for x in steps],
            "advice": _advice(x["action"] for x in steps),
        }
    )
    return read, True


@dataclass
class _Head:
    """What ``decide`` reads of a dispatch that is not written yet."""

    id: uuid.UUID
    alert_id: uuid.UUID
    elder_id: uuid.UUID
    kind: str
    raised_at: datetime
    candidates: list[dict[str, Any]]
    escalated_at: datetime | None = None


async def fire_due(*, session: AsyncSession, now: datetime | None = None, limit: int = 50) -> int:
    """Run the next step of every dispatch whose wait is over, as one batch (the timer loop
    calls this; ``SKIP LOCKED`` lets several dispatch processes share the work). An accepted
    dispatch whose responder has not arrived within the policy's time is an overdue arrival:
    the desk is told."""
    now = now or datetime.now(UTC)
    due = list(
        await session.scalars(
            select(Dispatch)
            .where(Dispatch.due_at <= now)
            .order_by(Dispatch.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not due:
        return 0
    planned = []
    for d in due:
        if d.status == "accepted":
            planned.append((d, None, []))
        else:
            state, effects = chains.timeout(d.chain, _state(d), len(d.candidates))
            planned.append((d, state, effects))
    lookups = await Lookups.fetch(session, [(d, eff) for d, _, eff in planned])
    decided = []
    for d, state, effects in planned:
        if state is None:
            decided.append((d, _overdue(d, now)))
        else:
            decided.append((d, decide(d, state, effects, now, lookups)))
    await _apply(session, decided)
    return len(due)


def _overdue(d: Dispatch, now: datetime) -> Decision:
    """Accepted, and not on site in time: the responder may still come (the dispatch stays
    theirs), but the desk must know now."""
    return Decision(
        {"due_at": None},
        [_step(d, "arrival_overdue", now, staff_id=d.staff_id)],
        [
            _message(d, "arrival_overdue", "desk", staff_id=str(d.staff_id)),
            _message(d, "arrival_overdue", "caregiver", staff_id=str(d.staff_id)),
        ],
    )


async def next_due(*, session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(Dispatch.due_at)))


def _offered_to(principal: Principal, d: Dispatch) -> None:
    if principal.role is not Role.caregiver or d.staff_id != principal.staff:
        raise Forbidden(
            T("只有被派单的服务人员可以接单或拒单", "only the offered caregiver may answer")
        )
    if d.status != "offered":
        raise Conflict(
            T(f"派单当前状态为 {d.status}", f"the dispatch is {d.status}"), status_now=d.status
        )


async def accept(
    *, session: AsyncSession, principal: Principal, dispatch_id: uuid.UUID
) -> Dispatch:
    """The offered caregiver takes it: an emergency visit is planned for them (their check-in
    is the arrival), and a timer watches that they are on site within the policy's time."""
    d = await get(session=session, principal=principal, dispatch_id=dispatch_id, for_update=True)
    if d.status == "accepted" and d.staff_id == principal.staff:
        return d  # the handset retried
    _offered_to(principal, d)
    now = datetime.now(UTC)
    arrive_within = timedelta(seconds=dispatch_policy.load().arrival_timeout_s)
    d.status, d.accepted_at, d.due_at = "accepted", now, now + arrive_within
    if d.bed_id is not None and d.org_id is not None:
        visit = Visit(
            bed_id=d.bed_id,
            elder_id=d.elder_id,
            org_id=d.org_id,
            staff_id=d.staff_id,
            dispatch_id=d.id,
            kind="emergency",
            status="planned",
            planned_start=now,
            planned_end=now + timedelta(hours=1),
            items=["emergency_aid"],
        )
        session.add(visit)
        await session.flush()
        d.visit_id = visit.id
    await _apply(
        session,
        [
            (
                d,
                Decision(
                    {},
                    [_step(d, "accepted", now, staff_id=d.staff_id, actor=principal.sub)],
                    [_message(d, "accepted", "desk", staff_id=str(d.staff_id))],
                ),
            )
        ],
    )
    return d


async def decline(
    *, session: AsyncSession, principal: Principal, dispatch_id: uuid.UUID
) -> Dispatch:
    d = await get(session=session, principal=principal, dispatch_id=dispatch_id, for_update=True)
    _offered_to(principal, d)
    state, effects = chains.decline(d.chain, _state(d), len(d.candidates))
    now = datetime.now(UTC)
    lookups = await Lookups.fetch(session, [(d, effects)])
    await _apply(session, [(d, decide(d, state, effects, now, lookups, actor=principal.sub))])
    return d


async def arrived(
    *, session: AsyncSession, dispatch_id: uuid.UUID, at: datetime, staff_id: Any
) -> None:
    """The responder checked in at the home."""
    d = await session.scalar(select(Dispatch).where(Dispatch.id == dispatch_id).with_for_update())
    if d is None or d.status not in ("accepted", "offered", "escalated"):
        return
    d.status, d.arrived_at, d.due_at = "arrived", at, None
    step = _step(
        d, "arrived", datetime.now(UTC), staff_id=staff_id, detail={"handset_at": at.isoformat()}
    )
    await _apply(session, [(d, Decision({}, [step], []))])


async def resolve(
    *, session: AsyncSession, dispatch_id: uuid.UUID, actor: str, note: str | None
) -> Dispatch | None:
    """Done: the alert is resolved in telemetry (through the outbox). A caregiver who holds
    the dispatch but did not resolve it is told it is over."""
    d = await session.scalar(select(Dispatch).where(Dispatch.id == dispatch_id).with_for_update())
    if d is None or d.status in ("resolved", "cancelled"):
        return d
    now = datetime.now(UTC)
    holder = d.staff_id
    d.status, d.resolved_at, d.due_at, d.outcome_note = "resolved", now, None, note
    messages = []
    if holder is not None and actor != f"staff:{holder}":
        messages.append(_message(d, "resolved", "caregiver", staff_id=str(holder), note=note))
    step = _step(d, "resolved", now, actor=actor, detail={"note": note} if note else {})
    await _apply(session, [(d, Decision({}, [step], messages))])
    await outbox.resolve_alert(session=session, alert_id=d.alert_id, note=note)
    return d


async def resolve_by(
    *, session: AsyncSession, principal: Principal, dispatch_id: uuid.UUID, note: str | None
) -> Dispatch:
    d = await get(session=session, principal=principal, dispatch_id=dispatch_id)
    if principal.role is Role.caregiver and d.staff_id != principal.staff:
        raise Forbidden(
            T("只有接单的服务人员可以结案", "only the responding caregiver may resolve")
        )
    if d.status == "cancelled":
        raise Conflict(T("派单已取消", "the dispatch was cancelled"), status_now=d.status)
    actor = f"staff:{principal.staff}" if principal.role is Role.caregiver else principal.sub
    resolved = await resolve(session=session, dispatch_id=d.id, actor=actor, note=note)
    assert resolved is not None
    if resolved.visit_id is not None:
        visit = await session.get(Visit, resolved.visit_id)
        if visit is not None and visit.status == "planned":
            visit.status = "cancelled"
    return resolved


async def cancel(*, session: AsyncSession, body: DispatchCancel) -> Dispatch | None:
    """The alert was closed as a false alarm in telemetry. A cancel that overtakes its
    hand-off leaves a cancelled dispatch behind, so the late hand-off finds it and stops."""
    now = datetime.now(UTC)
    d = await session.scalar(
        select(Dispatch).where(Dispatch.alert_id == body.alert_id).with_for_update()
    )
    if d is None:
        if body.elder_id is None:
            return None
        await session.execute(
            insert(Dispatch)
            .values(
                id=new_id(),
                alert_id=body.alert_id,
                elder_id=body.elder_id,
                kind=body.kind or "unknown",
                raised_at=body.raised_at or now,
                received_at=now,
                status="cancelled",
                chain={},
                candidates=[],
                cancelled_at=now,
                outcome_note=body.reason,
            )
            .on_conflict_do_nothing(index_elements=["alert_id"])
        )
        return await session.scalar(select(Dispatch).where(Dispatch.alert_id == body.alert_id))
    if d.status in ("resolved", "cancelled"):
        return d
    responder = d.staff_id
    d.status, d.cancelled_at, d.due_at, d.outcome_note = "cancelled", now, None, body.reason
    if d.visit_id is not None:
        visit = await session.get(Visit, d.visit_id)
        if visit is not None and visit.status == "planned":
            visit.status = "cancelled"
    step = _step(d, "cancelled", now, actor="telemetry", detail={"reason": body.reason})
    messages = []
    if responder is not None:
        messages.append(
            _message(d, "cancelled", "caregiver", staff_id=str(responder), reason=body.reason)
        )
    await _apply(session, [(d, Decision({}, [step], messages))])
    return d


async def timeliness(
    *,
    session: AsyncSession,
    org_id: uuid.UUID,
    lo: datetime,
    hi: datetime,
    answered_within: tuple[int, int],
    on_site_within: int,
) -> tuple[int, int, int, int, int]:
    """An org's dispatches raised in [lo, hi): (counted, cancelled as false alarms, answered
    within each of ``answered_within`` seconds, on site within ``on_site_within``)."""
    answered = func.extract("epoch", Dispatch.accepted_at - Dispatch.raised_at)
    on_site = func.extract("epoch", Dispatch.arrived_at - Dispatch.raised_at)
    counted = Dispatch.status != "cancelled"
    row = (
        await session.execute(
            select(
                func.count().filter(counted),
                func.count().filter(Dispatch.status == "cancelled"),
                func.count().filter(counted, answered <= answered_within[0]),
                func.count().filter(counted, answered <= answered_within[1]),
                func.count().filter(counted, on_site <= on_site_within),
            ).where(Dispatch.org_id == org_id, Dispatch.raised_at >= lo, Dispatch.raised_at < hi)
        )
    ).one()
    return tuple(row)  # type: ignore[return-value]


def _advice(actions: Iterable[str]) -> str | None:
    """Calling 120 is advised once the chain said so, or was worked through."""
    return str(ADVICE_120) if set(actions) & {"advise_120", "exhausted"} else None


async def to_read(session: AsyncSession, d: Dispatch) -> DispatchRead:
    return (await to_reads(session, [d]))[0]


async def to_reads(session: AsyncSession, ds: list[Dispatch]) -> list[DispatchRead]:
    ids = [d.id for d in ds]
    steps: dict[uuid.UUID, list[StepRead]] = {i: [] for i in ids}
    if ids:
        for s in await session.scalars(
            select(DispatchStep).where(DispatchStep.dispatch_id.in_(ids)).order_by(DispatchStep.seq)
        ):
            steps[s.dispatch_id].append(StepRead.model_validate(s))
    out = []
    for d in ds:
        read = DispatchRead.model_validate(d)
        read.steps = steps[d.id]
        read.advice = _advice(s.action for s in read.steps)
        out.append(read)
    return out
