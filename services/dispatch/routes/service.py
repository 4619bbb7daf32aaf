"""The handset's task feed and the day's assignment of visits to caregivers."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import directory
from services.dispatch.dispatches import service as dispatches
from services.dispatch.dispatches.models import Dispatch
from services.dispatch.routes.schemas import (
    DayPlan,
    Route,
    RouteStop,
    SolveSummary,
    Tasks,
    Unassigned,
)
from services.dispatch.visits import service as visits
from services.dispatch.visits.models import Visit
from shared import clock
from shared.auth import Principal


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=clock.SHANGHAI)
    return start, start + timedelta(days=1)


async def tasks(
    *, session: AsyncSession, principal: Principal, staff_id: uuid.UUID, day: date
) -> Tasks:
    await directory.require_staff(session=session, principal=principal, staff_id=staff_id)
    lo, hi = day_bounds(day)
    route = list(
        await session.scalars(
            select(Visit)
            .where(
                Visit.staff_id == staff_id,
                Visit.status != "cancelled",
                (Visit.planned_start >= lo) & (Visit.planned_start < hi)
                | (Visit.status == "checked_in"),
            )
            .order_by(Visit.route_seq.nulls_last(), Visit.planned_start)
        )
    )
    offered = list(
        await session.scalars(
            select(Dispatch).where(Dispatch.status == "offered", Dispatch.staff_id == staff_id)
        )
    )
    active = list(
        await session.scalars(
            select(Dispatch).where(
                Dispatch.status.in_(("accepted", "arrived")), Dispatch.staff_id == staff_id
            )
        )
    )
    return Tasks(
        staff_id=staff_id,
        day=day,
        visits=[await visits.to_read(session, v) for v in route],
        offers=await dispatches.to_reads(session, offered),
        active=await dispatches.to_reads(session, active),
    )


def _minutes(dt: datetime) -> float:
    local = dt.astimezone(clock.SHANGHAI)
    return local.hour * 60 + local.minute + local.second / 60


def _clock_minutes(t: time) -> float:
    return t.hour * 60 + t.minute


async def plan_day(*, session: AsyncSession, principal: Principal, body, travel) -> DayPlan:
    """Solve the day: planned visits of the org (or one station) over its on-duty caregivers
    minus ``unavailable_staff``; visits already started stay where they are."""
    import numpy as np

    from services.dispatch import policy as dispatch_policy
    from services.dispatch.catalogue import service as catalogue
    from services.dispatch.chains.service import require_org
    from services.dispatch.coverage.travel import EstimateTravel
    from services.dispatch.routes import solver
    from shared import readmodel as rm

    await require_org(session, principal, body.org_id)
    policy = dispatch_policy.load()
    a = policy.assignment
    lo, hi = day_bounds(body.day)
    stmt = select(Visit).where(
        Visit.org_id == body.org_id,
        Visit.planned_start >= lo,
        Visit.planned_start < hi,
        Visit.status != "cancelled",
    )
    if body.station_id:
        stmt = stmt.where(Visit.station_id == body.station_id)
    day_visits = list(await session.scalars(stmt.with_for_update()))
    kept = [v for v in day_visits if v.status != "planned"]
    open_visits = [v for v in day_visits if v.status == "planned"]
    s, st, e = rm.staff, rm.stations, rm.elders
    staff_stmt = (
        select(s.c.id, s.c.role, st.c.lat, st.c.lon)
        .join(st, st.c.id == s.c.station_id)
        .where(s.c.org_id == body.org_id, s.c.active.is_(True), s.c.on_duty.is_(True))
    )
    if body.station_id:
        staff_stmt = staff_stmt.where(s.c.station_id == body.station_id)
    unavailable = set(body.unavailable_staff)
    staff_rows = [r for r in (await session.execute(staff_stmt)).all() if r.id not in unavailable]
    homes = {
        r.id: (r.lat, r.lon, r.zone)
        for r in await session.execute(
            select(e.c.id, e.c.lat, e.c.lon, e.c.zone).where(
                e.c.id.in_({v.elder_id for v in open_visits})
            )
        )
    }
    cat = await catalogue.load(session=session)
    points = [(r.lat, r.lon) for r in staff_rows]
    zones = ["urban"] * len(staff_rows)
    jobs, workers = [], []
    started = {
        v.staff_id: max(_minutes(v.check_out_at or v.planned_end), 0) for v in kept if v.staff_id
    }
    for v in open_visits:
        home = homes.get(v.elder_id)
        if home is None or home[0] is None:
            continue
        points.append((home[0], home[1]))
        zones.append(home[2] or "urban")
        start = _minutes(v.planned_start)
        needs = frozenset(f"item:{c}" for c in v.items if c in cat.items and cat.items[c].roles)
        jobs.append(
            solver.Job(
                id=str(v.id),
                location=len(points) - 1,
                service=(v.planned_end - v.planned_start).total_seconds() / 60,
                window=(max(0.0, start - a.window_slack_minutes), start + a.window_slack_minutes),
                skills=needs,
                preferred=str(v.staff_id) if v.staff_id and v.staff_id not in unavailable else None,
            )
        )
    for k, r in enumerate(staff_rows):
        skills = frozenset(
            f"item:{c}" for c, item in cat.items.items() if not item.roles or r.role in item.roles
        )
        shift_start = max(_clock_minutes(a.shift_start), started.get(r.id, 0))
        workers.append(
            solver.Worker(
                id=str(r.id),
                location=k,
                shift=(shift_start, _clock_minutes(a.shift_end)),
                break_window=(_clock_minutes(a.break_earliest), _clock_minutes(a.break_latest)),
                break_minutes=a.break_minutes,
                max_tasks=a.max_visits,
                skills=skills,
            )
        )
    pts = np.array(points, dtype=float).reshape(-1, 2)
    estimate = travel if isinstance(travel, EstimateTravel) else EstimateTravel(policy)
    matrix = np.zeros((len(pts), len(pts)))
    for zone in set(zones):
        cols = [i for i, z in enumerate(zones) if z == zone]
        if len(pts):
            matrix[:, cols] = estimate.matrix_now(pts, pts[cols], zone)
    baseline = solver.greedy(
        jobs, workers, matrix, continuity_tolerance=a.continuity_tolerance_minutes
    )
    result = (
        solver.vroom_solve(jobs, workers, matrix, timeout_s=a.solver_timeout_s)
        if body.solver == "vroom" and jobs and workers
        else baseline
    )
    if not workers:
        result.unassigned = {j.id: solver.NO_SKILL for j in jobs}
    by_id = {str(v.id): v for v in open_visits}
    if body.apply:
        for wid, stops in result.routes.items():
            for seq, stop in enumerate(stops):
                v = by_id[stop.job]
                v.staff_id = uuid.UUID(wid)
                v.route_seq = seq
                v.eta = datetime.combine(body.day, time.min, tzinfo=clock.SHANGHAI) + timedelta(
                    minutes=stop.eta
                )
        for jid in result.unassigned:
            v = by_id[jid]
            if v.staff_id in unavailable:
                v.staff_id = None
            v.route_seq = v.eta = None
        await session.flush()

    def summary(sol) -> SolveSummary:
        return SolveSummary(
            solver=sol.solver,
            assigned=sol.assigned,
            unassigned=[
                Unassigned(visit_id=uuid.UUID(j), reason=r) for j, r in sol.unassigned.items()
            ],
            travel_minutes=sol.travel_minutes,
            seconds=round(sol.seconds, 3),
        )

    return DayPlan(
        day=body.day,
        visits=len(day_visits),
        kept=len(kept),
        result=summary(result),
        baseline=summary(baseline),
        routes=[
            Route(
                staff_id=uuid.UUID(wid),
                stops=[
                    RouteStop(
                        visit_id=uuid.UUID(s.job),
                        eta_minutes=round(s.eta, 1),
                        travel_minutes=round(s.travel, 1),
                    )
                    for s in stops
                ],
                travel_minutes=round(sum(s.travel for s in stops), 1),
            )
            for wid, stops in result.routes.items()
        ],
        applied=body.apply,
    )
