"""Emergency dispatch: the hand-off from telemetry, candidates, the escalation chain, accept
and decline, arrival, resolution and cancellation. Every step is a ``DispatchStep`` row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Select, false, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
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

TIMER_CHANNEL = "dispatch_timers"
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


async def org_chain(session: AsyncSession, org_id: uuid.UUID | None) -> dict[str, Any]:
    if org_id is not None:
        own = await session.scalar(select(OrgSettings.chain).where(OrgSettings.org_id == org_id))
        if own:
            return own
    return dispatch_policy.load().default_chain


# The last place each candidate was seen today (an EVV fix), else their station.
_LAST_FIX = text(
    """
    SELECT DISTINCT ON (staff_id) staff_id, lat, lon FROM (
        SELECT staff_id, check_in_at AS t, check_in_lat AS lat, check_in_lon AS lon
        FROM dispatch.visits WHERE staff_id = ANY(:ids) AND check_in_at >= :since
        UNION ALL
        SELECT staff_id, check_out_at, check_out_lat, check_out_lon
        FROM dispatch.visits WHERE staff_id = ANY(:ids) AND check_out_at >= :since
    ) fixes WHERE lat IS NOT NULL ORDER BY staff_id, t DESC
    """
)


async def candidates(
    *, session: AsyncSession, bed: directory.BedContext, travel: TravelModel, now: datetime
) -> list[dict[str, Any]]:
    """On-duty, insured, qualified staff of the bed's org within the radius, nearest first by
    travel time from where they were last seen today (or their station); busy responders
    (an accepted dispatch not yet resolved) are left out."""
    if bed.elder_lat is None or bed.elder_lon is None:
        return []
    policy = dispatch_policy.load()
    s, st = rm.staff, rm.stations
    busy = select(Dispatch.staff_id).where(
        Dispatch.status.in_(("accepted", "arrived")), Dispatch.staff_id.is_not(None)
    )
    rows = (
        await session.execute(
            select(s.c.id, st.c.lat, st.c.lon)
            .select_from(s.outerjoin(st, st.c.id == s.c.station_id))
            .where(
                s.c.org_id == bed.org_id,
                s.c.active.is_(True),
                s.c.on_duty.is_(True),
                s.c.role.in_(sorted(policy.responder_roles)),
                s.c.insured_until >= clock.today(),
                s.c.id.not_in(busy),
            )
        )
    ).all()
    if not rows:
        return []
    fixes = {
        r.staff_id: (r.lat, r.lon)
        for r in await session.execute(
            _LAST_FIX, {"ids": [r.id for r in rows], "since": now - timedelta(hours=12)}
        )
    }
    fallback = None
    if bed.station_id is not None:
        home_station = await directory.station(session=session, station_id=bed.station_id)
        fallback = (home_station.lat, home_station.lon) if home_station else None
    ids, points = [], []
    for r in rows:
        where = fixes.get(r.id) or ((r.lat, r.lon) if r.lat is not None else fallback)
        if where is not None:
            ids.append(r.id)
            points.append(where)
    if not ids:
        return []
    home = np.array([[bed.elder_lat, bed.elder_lon]])
    if isinstance(travel, EstimateTravel):
        minutes = travel.matrix_now(np.array(points), home, bed.zone)[:, 0]
    else:
        minutes = (await travel.matrix(np.array(points), home, zone=bed.zone)).minutes[:, 0]
    limit = policy.limit_minutes(bed.zone)
    ranked = sorted((float(m), str(i)) for i, m in zip(ids, minutes, strict=True) if m <= limit)[
        : policy.max_candidates
    ]
    return [{"staff_id": i, "minutes": round(m, 1), "declined": False} for m, i in ranked]


def _state(d: Dispatch) -> chains.State:
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


async def _step(
    session: AsyncSession,
    d: Dispatch,
    action: str,
    at: datetime,
    *,
    staff_id: Any = None,
    actor: str = "system",
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        DispatchStep(
            dispatch_id=d.id,
            at=at,
            action=action,
            staff_id=uuid.UUID(str(staff_id)) if staff_id else None,
            actor=actor,
            detail=detail or {},
        )
    )


def _payload(d: Dispatch, **extra: Any) -> dict[str, Any]:
    return {
        "dispatch_id": str(d.id),
        "alert_id": str(d.alert_id),
        "elder_id": str(d.elder_id),
        "kind": d.kind,
        "raised_at": d.raised_at.isoformat(),
        **extra,
    }


async def _apply(
    session: AsyncSession,
    d: Dispatch,
    state: chains.State,
    effects: list[chains.Effect],
    now: datetime,
    *,
    actor: str = "system",
) -> None:
    """Write what the chain decided: steps, notifications, the new state and its timer."""
    cands = [dict(c) for c in d.candidates]
    rows: list[dict[str, Any]] = []
    for effect in effects:
        staff = cands[effect.candidate]["staff_id"] if effect.candidate is not None else None
        if effect.action == "declined" and effect.candidate is not None:
            cands[effect.candidate]["declined"] = True
            d.declined_at = now
        await _step(
            session,
            d,
            effect.action,
            now,
            staff_id=staff,
            actor=actor if effect.action == "declined" else "system",
        )
        if effect.action == "offered":
            d.offered_at = now
            rows.append(
                {
                    "event": "offer",
                    "recipient_kind": "caregiver",
                    "dispatch_id": d.id,
                    "payload": _payload(
                        d, staff_id=staff, minutes=cands[effect.candidate]["minutes"]
                    ),
                }
            )
        elif effect.action in ("notify_family", "advise_120"):
            family = await notifications.family_recipients(session=session, elder_id=d.elder_id)
            advice = (
                {"advice": ADVICE_120.zh, "advice_en": ADVICE_120.en}
                if effect.action == "advise_120"
                else {}
            )
            for person in family:
                rows.append(
                    {
                        "event": effect.action,
                        "recipient_kind": "family",
                        "dispatch_id": d.id,
                        "payload": _payload(d, recipient=person, **advice),
                    }
                )
            if effect.action == "advise_120":
                rows.append(
                    {
                        "event": "advise_120",
                        "recipient_kind": "desk",
                        "dispatch_id": d.id,
                        "payload": _payload(d, **advice),
                    }
                )
        elif effect.action == "notify_community":
            elder = await directory.elder(session=session, elder_id=d.elder_id)
            rows.append(
                {
                    "event": "notify_community",
                    "recipient_kind": "community",
                    "dispatch_id": d.id,
                    "payload": _payload(
                        d,
                        region=elder.residence_region if elder else None,
                        address=elder.address if elder else None,
                    ),
                }
            )
        if effect.action in ("notify_family", "notify_community", "advise_120", "exhausted"):
            d.escalated_at = d.escalated_at or now
    d.candidates = cands
    d.status = state.status
    d.step_index, d.round, d.next_candidate = state.step_index, state.round, state.next_candidate
    d.staff_id = uuid.UUID(cands[state.offered]["staff_id"]) if state.offered is not None else None
    d.due_at = now + timedelta(seconds=state.due_in_s) if state.due_in_s is not None else None
    await notifications.enqueue_many(session=session, rows=rows)
    await session.flush()
    if d.due_at is not None:
        await session.execute(select(func.pg_notify(TIMER_CHANNEL, "")))


async def create(
    *, session: AsyncSession, body: DispatchCreate, travel: TravelModel
) -> tuple[Dispatch, bool]:
    """The hand-off. Idempotent on ``alert_id`` itself (a concurrent repeat waits on the
    unique index and then finds the first). An elder without a bed or without a candidate
    still gets a dispatch: it goes straight to the call tree."""
    existing = await session.scalar(select(Dispatch).where(Dispatch.alert_id == body.alert_id))
    if existing is not None:
        return existing, False
    now = datetime.now(UTC)
    bed = await directory.open_bed_of_elder(session=session, elder_id=body.elder_id)
    chain = await org_chain(session, bed.org_id if bed else None)
    cands = await candidates(session=session, bed=bed, travel=travel, now=now) if bed else []
    dispatch_id = new_id()
    inserted = await session.scalar(
        insert(Dispatch)
        .values(
            id=dispatch_id,
            alert_id=body.alert_id,
            elder_id=body.elder_id,
            kind=body.kind,
            raised_at=body.raised_at,
            received_at=now,
            bed_id=bed.bed_id if bed else None,
            org_id=bed.org_id if bed else None,
            status="offered",
            chain=chain,
            candidates=cands,
        )
        .on_conflict_do_nothing(index_elements=["alert_id"])
        .returning(Dispatch.id)
    )
    if inserted is None:  # a concurrent hand-off of the same alert won
        return await session.scalar(
            select(Dispatch).where(Dispatch.alert_id == body.alert_id)
        ), False  # type: ignore[return-value]
    d = await session.get(Dispatch, dispatch_id)
    assert d is not None
    await _step(
        session,
        d,
        "received",
        now,
        detail={"bed_id": str(bed.bed_id) if bed else None, "candidates": len(cands)},
    )
    state, effects = chains.start(chain, len(cands))
    await _apply(session, d, state, effects, now)
    return d, True


async def fire_due(*, session: AsyncSession, now: datetime | None = None, limit: int = 50) -> int:
    """Run the next step of every dispatch whose wait is over (the timer loop calls this;
    ``SKIP LOCKED`` lets several dispatch processes share the work)."""
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
    for d in due:
        state, effects = chains.timeout(d.chain, _state(d), len(d.candidates))
        await _apply(session, d, state, effects, now)
    return len(due)


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
    d = await get(session=session, principal=principal, dispatch_id=dispatch_id, for_update=True)
    if d.status == "accepted" and d.staff_id == principal.staff:
        return d  # the handset retried
    _offered_to(principal, d)
    now = datetime.now(UTC)
    d.status, d.accepted_at, d.due_at = "accepted", now, None
    await _step(session, d, "accepted", now, staff_id=d.staff_id, actor=principal.sub)
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
    await notifications.enqueue(
        session=session,
        event="accepted",
        recipient_kind="desk",
        dispatch_id=d.id,
        payload=_payload(d, staff_id=str(d.staff_id)),
    )
    await session.flush()
    return d


async def decline(
    *, session: AsyncSession, principal: Principal, dispatch_id: uuid.UUID
) -> Dispatch:
    d = await get(session=session, principal=principal, dispatch_id=dispatch_id, for_update=True)
    _offered_to(principal, d)
    state, effects = chains.decline(d.chain, _state(d), len(d.candidates))
    await _apply(session, d, state, effects, datetime.now(UTC), actor=principal.sub)
    return d


async def arrived(
    *, session: AsyncSession, dispatch_id: uuid.UUID, at: datetime, staff_id: Any
) -> None:
    """The responder checked in at the home."""
    d = await session.scalar(select(Dispatch).where(Dispatch.id == dispatch_id).with_for_update())
    if d is None or d.status not in ("accepted", "offered", "escalated"):
        return
    d.status, d.arrived_at, d.due_at = "arrived", at, None
    await _step(
        session,
        d,
        "arrived",
        datetime.now(UTC),
        staff_id=staff_id,
        detail={"handset_at": at.isoformat()},
    )
    await session.flush()


async def resolve(
    *, session: AsyncSession, dispatch_id: uuid.UUID, actor: str, note: str | None
) -> Dispatch | None:
    """Done: the alert is resolved in telemetry (through the outbox)."""
    d = await session.scalar(select(Dispatch).where(Dispatch.id == dispatch_id).with_for_update())
    if d is None or d.status in ("resolved", "cancelled"):
        return d
    now = datetime.now(UTC)
    d.status, d.resolved_at, d.due_at, d.outcome_note = "resolved", now, None, note
    await _step(session, d, "resolved", now, actor=actor, detail={"note": note} if note else {})
    await outbox.resolve_alert(session=session, alert_id=d.alert_id, note=note)
    await session.flush()
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
    resolved = await resolve(session=session, dispatch_id=d.id, actor=principal.sub, note=note)
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
    await _step(session, d, "cancelled", now, actor="telemetry", detail={"reason": body.reason})
    if d.visit_id is not None:
        visit = await session.get(Visit, d.visit_id)
        if visit is not None and visit.status == "planned":
            visit.status = "cancelled"
    if responder is not None:
        await notifications.enqueue(
            session=session,
            event="cancelled",
            recipient_kind="caregiver",
            dispatch_id=d.id,
            payload=_payload(d, staff_id=str(responder), reason=body.reason),
        )
    await session.flush()
    return d


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
        if any(s.action == "advise_120" for s in read.steps):
            read.advice = str(ADVICE_120)
        out.append(read)
    return out
