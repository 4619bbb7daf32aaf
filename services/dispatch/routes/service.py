"""The handset's task feed, the day's assignment of visits to caregivers, and the re-check of
a day's assignment as it stands (VROOM's plan mode).

The solvers are plain functions of a problem (``routes/solver.py``); this module reads the
day into one (``load_day``), runs them off the event loop (VROOM releases the GIL, so the
dispatch process keeps answering meanwhile) and writes the answer back."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import directory
from services.dispatch import policy as dispatch_policy
from services.dispatch.catalogue import service as catalogue
from services.dispatch.chains.service import require_org
from services.dispatch.coverage.travel import EstimateTravel, TravelModel
from services.dispatch.dispatches import service as dispatches
from services.dispatch.routes import solver
from services.dispatch.routes.schemas import (
    CheckedRoute,
    CheckedStop,
    DayCheck,
    DayPlan,
    PlanDayIn,
    Route,
    RouteStop,
    SolveSummary,
    Tasks,
    Unassigned,
    Violation,
)
from services.dispatch.visits import service as visits
from services.dispatch.visits.models import Visit
from shared import clock
from shared.auth import Principal
from shared.i18n import T

NO_HOME = "no_home_location"  # the elder's home has no coordinates
NO_CAREGIVER = "no_caregiver"  # re-check: the visit is on nobody's route
CAREGIVER_UNAVAILABLE = "caregiver_unavailable"  # re-check: its caregiver is off duty or gone

VIOLATIONS = {
    "delay": T("晚于服务时间窗", "starts after its time window"),
    "lead_time": T("早于服务时间窗", "starts before its time window"),
    "skills": T("服务人员不具备所需资质", "the caregiver lacks the qualification"),
    "max_tasks": T("超过每人每日上门次数上限", "more visits than the daily cap"),
    "missing_break": T("没有留出休息时间", "leaves no room for the break"),
    "shift_end": T("超出班次结束时间", "runs past the end of the shift"),
}


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=clock.SHANGHAI)
    return start, start + timedelta(days=1)


async def tasks(
    *, session: AsyncSession, principal: Principal, staff_id: uuid.UUID, day: date
) -> Tasks:
    await directory.require_staff(session=session, principal=principal, staff_id=staff_id)
    lo, hi = day_bounds(day)
    route = await visits.route_of(session=session, staff_id=staff_id, lo=lo, hi=hi)
    offered, active = await dispatches.of_staff(session=session, staff_id=staff_id)
    return Tasks(
        staff_id=staff_id,
        day=day,
        visits=await visits.to_reads(session, route),
        offers=await dispatches.to_reads(session, offered),
        active=await dispatches.to_reads(session, active),
    )


def _minutes(dt: datetime) -> float:
    local = dt.astimezone(clock.SHANGHAI)
    return local.hour * 60 + local.minute + local.second / 60


def _clock_minutes(t: time) -> float:
    return t.hour * 60 + t.minute


@dataclass
class Day:
    """One org's (or station's) day as a solver problem."""

    visits: list[Visit]  # every visit of the day that is not cancelled
    open: dict[str, Visit]  # still planned: what may be (re)assigned, by id
    kept: list[Visit]  # already started: stay where they are
    jobs: list[solver.Job]
    workers: list[solver.Worker]
    matrix: np.ndarray
    job_group: dict[str, uuid.UUID | None]  # visit → its bed's station
    worker_group: dict[str, uuid.UUID | None]  # caregiver → their station
    no_home: list[str] = field(default_factory=list)


async def load_day(
    *,
    session: AsyncSession,
    org_id: uuid.UUID,
    day: date,
    station_id: uuid.UUID | None,
    unavailable: set[uuid.UUID],
    travel: TravelModel,
    lock: bool,
) -> Day:
    a = dispatch_policy.load().assignment
    lo, hi = day_bounds(day)
    day_visits = await visits.of_day(
        session=session, org_id=org_id, lo=lo, hi=hi, station_id=station_id, lock=lock
    )
    kept = [v for v in day_visits if v.status != "planned"]
    planned = [v for v in day_visits if v.status == "planned"]
    staff = [
        r
        for r in await directory.on_duty_staff(
            session=session, org_id=org_id, station_id=station_id
        )
        if r.id not in unavailable
    ]
    homes = await directory.homes(session=session, elder_ids={v.elder_id for v in planned})
    cat = await catalogue.load(session=session)
    points = [(r.lat, r.lon) for r in staff]
    zones = ["urban"] * len(staff)
    # a caregiver busy with a visit already begun starts the rest of the day after it
    busy_until = {
        v.staff_id: max(_minutes(v.check_out_at or v.planned_end), 0) for v in kept if v.staff_id
    }
    jobs, no_home, job_group = [], [], {}
    for v in planned:
        home = homes.get(v.elder_id)
        if home is None or home.lat is None or home.lon is None:
            no_home.append(str(v.id))
            continue
        points.append((home.lat, home.lon))
        zones.append(home.zone or "urban")
        start = _minutes(v.planned_start)
        jobs.append(
            solver.Job(
                id=str(v.id),
                location=len(points) - 1,
                service=(v.planned_end - v.planned_start).total_seconds() / 60,
                window=(max(0.0, start - a.window_slack_minutes), start + a.window_slack_minutes),
                skills=frozenset(
                    f"item:{c}" for c in v.items if c in cat.items and cat.items[c].roles
                ),
                preferred=str(v.staff_id) if v.staff_id and v.staff_id not in unavailable else None,
            )
        )
        job_group[str(v.id)] = v.station_id
    workers = [
        solver.Worker(
            id=str(r.id),
            location=k,
            shift=(
                max(_clock_minutes(a.shift_start), busy_until.get(r.id, 0)),
                _clock_minutes(a.shift_end),
            ),
            break_window=(_clock_minutes(a.break_earliest), _clock_minutes(a.break_latest)),
            break_minutes=a.break_minutes,
            max_tasks=a.max_visits,
            skills=frozenset(
                f"item:{c}"
                for c, item in cat.items.items()
                if not item.roles or r.role in item.roles
            ),
        )
        for k, r in enumerate(staff)
    ]
    pts = np.array(points, dtype=float).reshape(-1, 2)
    estimate = (
        travel if isinstance(travel, EstimateTravel) else EstimateTravel(dispatch_policy.load())
    )
    matrix = np.zeros((len(pts), len(pts)))
    for zone in set(zones):  # the time to reach a place follows that place's zone
        cols = [i for i, z in enumerate(zones) if z == zone]
        matrix[:, cols] = estimate.matrix_now(pts, pts[cols], zone)
    return Day(
        visits=day_visits,
        open={str(v.id): v for v in planned},
        kept=kept,
        jobs=jobs,
        workers=workers,
        matrix=matrix,
        job_group=job_group,
        worker_group={str(r.id): r.station_id for r in staff},
        no_home=no_home,
    )


def _summary(sol: solver.Solution, no_home: list[str]) -> SolveSummary:
    unassigned = [Unassigned(visit_id=uuid.UUID(j), reason=r) for j, r in sol.unassigned.items()]
    unassigned += [Unassigned(visit_id=uuid.UUID(j), reason=NO_HOME) for j in no_home]
    return SolveSummary(
        solver=sol.solver,
        assigned=sol.assigned,
        unassigned=unassigned,
        travel_minutes=sol.travel_minutes,
        seconds=round(sol.seconds, 3),
    )


async def plan_day(
    *, session: AsyncSession, principal: Principal, body: PlanDayIn, travel: TravelModel
) -> DayPlan:
    """Solve the day: planned visits of the org (or one station) over its on-duty caregivers
    minus ``unavailable_staff``; visits already started stay where they are."""
    await require_org(session, principal, body.org_id)
    a = dispatch_policy.load().assignment
    unavailable = set(body.unavailable_staff)
    d = await load_day(
        session=session,
        org_id=body.org_id,
        day=body.day,
        station_id=body.station_id,
        unavailable=unavailable,
        travel=travel,
        lock=body.apply,
    )
    baseline = await asyncio.to_thread(
        solver.greedy,
        d.jobs,
        d.workers,
        d.matrix,
        continuity_tolerance=a.continuity_tolerance_minutes,
    )
    result = baseline
    if body.solver == "vroom" and d.jobs and d.workers:
        result = await asyncio.to_thread(
            solver.solve,
            d.jobs,
            d.workers,
            d.matrix,
            job_group=d.job_group,
            worker_group=d.worker_group,
            timeout_s=a.solver_timeout_s,
        )
    if body.apply:
        await visits.assign(
            session=session,
            visits=d.open,
            routes={wid: [s.job for s in stops] for wid, stops in result.routes.items()},
            etas={s.job: s.eta for stops in result.routes.values() for s in stops},
            day=body.day,
            unavailable=unavailable,
        )
    return DayPlan(
        day=body.day,
        visits=len(d.visits),
        kept=len(d.kept),
        result=_summary(result, d.no_home),
        baseline=_summary(baseline, d.no_home),
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


def _violation(code: str) -> Violation:
    return Violation(code=code, message=str(VIOLATIONS.get(code, T(code, code))))


async def check_day(
    *,
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID,
    day: date,
    station_id: uuid.UUID | None,
    travel: TravelModel,
) -> DayCheck:
    """The day's assignment as it stands, re-checked: each caregiver's planned visits in
    their route order get ETAs, and whatever the routes break is listed. Nothing moves."""
    await require_org(session, principal, org_id)
    d = await load_day(
        session=session,
        org_id=org_id,
        day=day,
        station_id=station_id,
        unavailable=set(),
        travel=travel,
        lock=False,
    )
    on_duty = {w.id for w in d.workers}
    job_by_id = {j.id: j for j in d.jobs}
    routes: dict[str, list[solver.Job]] = {}
    unassigned = [Unassigned(visit_id=uuid.UUID(j), reason=NO_HOME) for j in d.no_home]
    ordered = sorted(
        d.open.values(),
        key=lambda v: (v.route_seq is None, v.route_seq or 0, v.planned_start),
    )
    for v in ordered:
        job = job_by_id.get(str(v.id))
        if job is None:
            continue
        if v.staff_id is None:
            unassigned.append(Unassigned(visit_id=v.id, reason=NO_CAREGIVER))
        elif str(v.staff_id) not in on_duty:
            unassigned.append(Unassigned(visit_id=v.id, reason=CAREGIVER_UNAVAILABLE))
        else:
            routes.setdefault(str(v.staff_id), []).append(job)
    checked = await asyncio.to_thread(solver.check, routes, d.workers, d.matrix)
    out = [
        CheckedRoute(
            staff_id=uuid.UUID(wid),
            stops=[
                CheckedStop(
                    visit_id=uuid.UUID(s.job),
                    eta_minutes=round(s.eta, 1),
                    travel_minutes=round(s.travel, 1),
                    violations=[_violation(c) for c in s.violations],
                )
                for s in stops
            ],
            violations=[
                _violation("shift_end" if c == "delay" else c)
                for c in checked.route_violations.get(wid, [])
            ],
            travel_minutes=round(sum(s.travel for s in stops), 1),
        )
        for wid, stops in checked.routes.items()
    ]
    return DayCheck(
        day=day,
        visits=len(d.visits),
        kept=len(d.kept),
        routes=out,
        unassigned=unassigned,
        violations=checked.violated,
        travel_minutes=checked.travel_minutes,
        seconds=round(checked.seconds, 3),
    )
