"""Assigning a day's visits to caregivers: VROOM (``pyvroom``) and a greedy baseline, on the
same problem and the same travel matrix, so their travel minutes compare.

Times are minutes after midnight (Asia/Shanghai). A job is a visit: its home, its service
minutes, the window in which it may start, the skills it needs (qualified roles), and the
usual caregiver (continuity of care — soft: VROOM starts from routes that keep every visit
with its usual caregiver, the greedy keeps it when that costs at most a few minutes more).
A worker is a caregiver: start and end at the station, shift, one break, a cap on visits.

``solve`` is what the service runs: VROOM per station (a station's caregivers and the visits
of its beds — the service radius keeps them close, and many small problems solve far faster
than one district-sized one), the stations side by side on ``threads`` (VROOM releases the
GIL), then a district pass that inserts what a station could not place (its caregivers are
off sick, or its day is full) into the cheapest feasible place on any qualified caregiver's
route. ``check`` is VROOM's plan mode: it re-checks a day's existing routes as they stand
(ETAs, and each broken window, shift, break, skill or cap as a violation).
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

log = logging.getLogger(__name__)

NO_SKILL = "no_qualified_staff"
NO_SLOT = "no_feasible_slot"  # time windows, shifts, breaks or the cap leave no room
OUTSIDE_SHIFTS = "outside_every_shift"


@dataclass(frozen=True)
class Job:
    id: str
    location: int  # index into the matrix
    service: float
    window: tuple[float, float]
    skills: frozenset[str] = frozenset()
    preferred: str | None = None


@dataclass(frozen=True)
class Worker:
    id: str
    location: int
    shift: tuple[float, float]
    break_window: tuple[float, float] | None
    break_minutes: float
    max_tasks: int
    skills: frozenset[str] = frozenset()


@dataclass
class Stop:
    job: str
    eta: float
    travel: float


@dataclass
class Solution:
    solver: str
    routes: dict[str, list[Stop]] = field(default_factory=dict)
    unassigned: dict[str, str] = field(default_factory=dict)
    travel_minutes: float = 0.0
    seconds: float = 0.0

    @property
    def assigned(self) -> int:
        return sum(len(r) for r in self.routes.values())


def qualified(job: Job, worker: Worker) -> bool:
    return job.skills <= worker.skills


def reason(job: Job, workers: Sequence[Worker], matrix: np.ndarray) -> str:
    able = [w for w in workers if qualified(job, w)]
    if not able:
        return NO_SKILL
    if not any(
        w.shift[0] + matrix[w.location, job.location] <= job.window[1]
        and max(job.window[0], w.shift[0]) + job.service + matrix[job.location, w.location]
        <= w.shift[1]
        for w in able
    ):
        return OUTSIDE_SHIFTS
    return NO_SLOT


def route_travel(worker: Worker, stops: Sequence[Job], matrix: np.ndarray) -> float:
    path = [worker.location, *(j.location for j in stops), worker.location]
    return float(sum(matrix[a, b] for a, b in itertools.pairwise(path)))


def _timeline(
    worker: Worker, stops: Sequence[Job], matrix: np.ndarray
) -> tuple[list[float], int | None] | None:
    """Start times of ``stops`` in order and where the break goes (the index of the stop it
    precedes; ``len(stops)`` after the last); None if the route breaks a window, the shift
    or the break window. The break is taken where the caregiver is, before travelling on —
    as VROOM schedules it, so a route feasible here is feasible there."""
    t, here = worker.shift[0], worker.location
    etas: list[float] = []
    at: int | None = None
    for k, job in enumerate(stops):
        travel = matrix[here, job.location]
        if at is None and worker.break_window is not None:
            lo, hi = worker.break_window
            # the break now if this job would otherwise end after the break window closes
            if max(t + travel, job.window[0]) + job.service > hi:
                if max(t, lo) > hi:
                    return None
                t, at = max(t, lo) + worker.break_minutes, k
        t = max(t + travel, job.window[0])
        if t > job.window[1]:
            return None
        etas.append(t)
        t += job.service
        here = job.location
    if at is None and worker.break_window is not None:
        t = max(t, worker.break_window[0])
        if t > worker.break_window[1]:
            return None
        t, at = t + worker.break_minutes, len(stops)
    t += matrix[here, worker.location]
    return (etas, at) if t <= worker.shift[1] else None


def _simulate(worker: Worker, stops: Sequence[Job], matrix: np.ndarray) -> list[float] | None:
    """Start times of ``stops`` in order (None if infeasible), see ``_timeline``."""
    timeline = _timeline(worker, stops, matrix)
    return None if timeline is None else timeline[0]


def _steps(p: _Problem, w: Worker, route: Sequence[Job], at: int | None) -> list[tuple[str, int]]:
    seq = [("job", p.rank[j.id]) for j in route]
    if at is not None and w.break_window is not None:
        seq.insert(at, ("break", p.vehicle[w.id]))
    return seq


def greedy(
    jobs: Sequence[Job],
    workers: Sequence[Worker],
    matrix: np.ndarray,
    *,
    continuity_tolerance: float = 10.0,
) -> Solution:
    """Visits by window start; each goes to the caregiver whose route grows least when it is
    appended (the usual caregiver when within ``continuity_tolerance`` minutes of the best)."""
    t0 = time.perf_counter()
    routes: dict[str, list[Job]] = {w.id: [] for w in workers}
    by_id = {w.id: w for w in workers}
    sol = Solution("greedy")
    for job in sorted(jobs, key=lambda j: (j.window[0], j.id)):
        options = []
        for w in workers:
            r = routes[w.id]
            if len(r) >= w.max_tasks or not qualified(job, w):
                continue
            last = r[-1].location if r else w.location
            extra = (
                matrix[last, job.location]
                + matrix[job.location, w.location]
                - matrix[last, w.location]
            )
            if _simulate(w, [*r, job], matrix) is not None:
                options.append((extra, w.id))
        if not options:
            sol.unassigned[job.id] = reason(job, workers, matrix)
            continue
        best = min(options)
        chosen = best[1]
        if job.preferred is not None:
            own = [o for o in options if o[1] == job.preferred]
            if own and own[0][0] <= best[0] + continuity_tolerance:
                chosen = job.preferred
        routes[chosen].append(job)
    _finish(sol, routes, by_id, matrix)
    sol.seconds = time.perf_counter() - t0
    return sol


def _finish(
    sol: Solution, routes: dict[str, list[Job]], workers: dict[str, Worker], matrix: np.ndarray
) -> None:
    total = 0.0
    for wid, stops in routes.items():
        if not stops:
            continue
        w = workers[wid]
        etas = _simulate(w, stops, matrix) or [j.window[0] for j in stops]
        prev = w.location
        sol.routes[wid] = []
        for job, eta in zip(stops, etas, strict=True):
            sol.routes[wid].append(Stop(job.id, float(eta), float(matrix[prev, job.location])))
            prev = job.location
        total += route_travel(w, stops, matrix)
    sol.travel_minutes = round(total, 1)


def warm_routes(
    jobs: Sequence[Job], workers: Sequence[Worker], matrix: np.ndarray
) -> list[tuple[Worker, list[Job]]]:
    """Continuity of care as a starting point: each caregiver's usual visits in window order,
    as many as stay feasible (VROOM refuses an infeasible warm start outright)."""
    usual: dict[str, list[Job]] = {}
    for j in jobs:
        if j.preferred:
            usual.setdefault(j.preferred, []).append(j)
    out = []
    for w in workers:
        route: list[Job] = []
        for j in sorted(usual.get(w.id, []), key=lambda j: (j.window[0], j.id)):
            fits = len(route) < w.max_tasks and qualified(j, w)
            if fits and _simulate(w, [*route, j], matrix) is not None:
                route.append(j)
        if route:
            out.append((w, route))
    return out


class _Problem:
    """One VROOM input over just the locations it uses (a station's problem must not carry
    the district's whole matrix)."""

    def __init__(self, jobs: Sequence[Job], workers: Sequence[Worker], matrix: np.ndarray) -> None:
        self.jobs = {k + 1: j for k, j in enumerate(jobs)}
        self.workers = {k + 1: w for k, w in enumerate(workers)}
        self.rank = {j.id: k for k, j in self.jobs.items()}
        self.vehicle = {w.id: k for k, w in self.workers.items()}
        used = sorted({w.location for w in workers} | {j.location for j in jobs})
        self.local = {loc: k for k, loc in enumerate(used)}
        self.seconds = np.rint(matrix[np.ix_(used, used)] * 60).astype(np.int64).tolist()
        self.skills = {
            s: k + 1
            for k, s in enumerate(
                sorted({s for w in workers for s in w.skills} | {s for j in jobs for s in j.skills})
            )
        }

    def build(self, steps: Mapping[str, list[tuple[str, int]]] | None = None) -> object:
        """The VROOM input; ``steps`` gives vehicles their routes (a warm start for ``solve``,
        the routes to check in plan mode) as ("job" | "break", id) pairs."""
        import vroom  # an optional heavy import: only the solver needs it

        problem = vroom.Input()
        problem.set_durations_matrix(profile="car", matrix_input=self.seconds)
        for k, w in self.workers.items():
            route = (steps or {}).get(w.id)
            vsteps: list[object] = []
            if route:
                vsteps = [
                    vroom.VehicleStepStart(),
                    *(
                        vroom.VehicleStepBreak(i) if kind == "break" else vroom.VehicleStepSingle(i)
                        for kind, i in route
                    ),
                    vroom.VehicleStepEnd(),
                ]
            breaks = []
            if w.break_window is not None:
                lo, hi = w.break_window
                breaks = [
                    vroom.Break(
                        k,
                        time_windows=[vroom.TimeWindow(int(lo * 60), int(hi * 60))],
                        service=int(w.break_minutes * 60),
                    )
                ]
            problem.add_vehicle(
                vroom.Vehicle(
                    k,
                    start=self.local[w.location],
                    end=self.local[w.location],
                    skills={self.skills[s] for s in w.skills},
                    time_window=vroom.TimeWindow(int(w.shift[0] * 60), int(w.shift[1] * 60)),
                    breaks=breaks,
                    max_tasks=w.max_tasks,
                    steps=vsteps,
                )
            )
        if self.jobs:
            problem.add_job(
                [
                    vroom.Job(
                        k,
                        location=self.local[j.location],
                        default_service=int(j.service * 60),
                        skills={self.skills[s] for s in j.skills},
                        time_windows=[
                            vroom.TimeWindow(int(j.window[0] * 60), int(j.window[1] * 60))
                        ],
                    )
                    for k, j in self.jobs.items()
                ]
            )
        return problem


def vroom_solve(
    jobs: Sequence[Job],
    workers: Sequence[Worker],
    matrix: np.ndarray,
    *,
    timeout_s: float = 25.0,
    exploration: int | None = None,
    threads: int = 2,
    warm_start: bool = True,
) -> Solution:
    """One VROOM solve of these jobs over these workers."""
    t0 = time.perf_counter()
    if exploration is None:  # search effort VROOM can afford within the time budget
        exploration = 5 if len(jobs) <= 300 else 2
    p = _Problem(jobs, workers, matrix)
    warm = None
    if warm_start:
        warm = {}
        for w, route in warm_routes(jobs, workers, matrix):
            timeline = _timeline(w, route, matrix)
            warm[w.id] = _steps(p, w, route, timeline[1] if timeline else None)
    options = {
        "exploration_level": exploration,
        "nb_threads": threads,
        "timeout": timedelta(seconds=timeout_s),
    }
    # VROOM's check of a warm start places breaks its own way and refuses some feasible
    # routes (VROOM-Project/vroom#1251), one vehicle per error: that caregiver starts empty.
    refused: set[str] = set()
    while True:
        steps = {k: v for k, v in (warm or {}).items() if k not in refused}
        try:
            answer = p.build(steps).solve(**options)  # type: ignore[attr-defined]
            break
        except Exception as exc:
            hit = re.search(r"Infeasible route for vehicle (\d+)", str(exc))
            vehicle = p.workers.get(int(hit.group(1))) if hit else None
            if vehicle is None or vehicle.id not in steps:
                raise
            refused.add(vehicle.id)
    if refused:
        log.info("VROOM refused %d of %d warm-start routes", len(refused), len(warm or {}))
    result = answer.to_dict()
    sol = Solution("vroom")
    routes: dict[str, list[Job]] = {}
    for r in result.get("routes", []):
        w = p.workers[r["vehicle"]]
        stops = [s for s in r["steps"] if s["type"] == "job"]
        routes[w.id] = [p.jobs[s["id"]] for s in stops]
        sol.routes[w.id] = []
        prev = w.location
        for s in stops:
            j = p.jobs[s["id"]]
            sol.routes[w.id].append(
                Stop(
                    j.id,
                    (s["arrival"] + s.get("waiting_time", 0)) / 60.0,
                    float(matrix[prev, j.location]),
                )
            )
            prev = j.location
    for u in result.get("unassigned", []):
        j = p.jobs[u["id"]]
        sol.unassigned[j.id] = reason(j, workers, matrix)
    sol.travel_minutes = round(
        sum(route_travel(p.workers[p.vehicle[wid]], r, matrix) for wid, r in routes.items()), 1
    )
    sol.seconds = time.perf_counter() - t0
    return sol


INSERT_NEAREST = 30  # caregivers (nearest stations first) tried for each leftover visit


def insert_leftovers(
    leftovers: Sequence[Job],
    workers: Sequence[Worker],
    routes: dict[str, list[Job]],
    matrix: np.ndarray,
) -> list[Job]:
    """Cheapest feasible insertion of each leftover visit (earliest window first) into the
    routes of the nearest qualified caregivers; returns the visits that fit nowhere."""
    left = []
    for job in sorted(leftovers, key=lambda j: (j.window[0], j.id)):
        near = sorted(
            (w for w in workers if qualified(job, w) and len(routes.get(w.id, [])) < w.max_tasks),
            key=lambda w: matrix[w.location, job.location],
        )[:INSERT_NEAREST]
        best: tuple[float, str, int] | None = None
        for w in near:
            route = routes.get(w.id, [])
            path = [w.location, *(j.location for j in route), w.location]
            for pos in range(len(route) + 1):
                a, b = path[pos], path[pos + 1]
                extra = matrix[a, job.location] + matrix[job.location, b] - matrix[a, b]
                if best is not None and extra >= best[0]:
                    continue
                if _simulate(w, [*route[:pos], job, *route[pos:]], matrix) is not None:
                    best = (float(extra), w.id, pos)
        if best is None:
            left.append(job)
            continue
        _, wid, pos = best
        routes.setdefault(wid, []).insert(pos, job)
    return left


def solve(
    jobs: Sequence[Job],
    workers: Sequence[Worker],
    matrix: np.ndarray,
    *,
    job_group: Mapping[str, Hashable],
    worker_group: Mapping[str, Hashable],
    timeout_s: float = 25.0,
    threads: int = 2,
) -> Solution:
    """VROOM per group (station), the groups side by side, then the district insertion pass
    for what no group placed. ``timeout_s`` is the whole budget, shared by job count."""
    t0 = time.perf_counter()
    by_id = {w.id: w for w in workers}
    groups: dict[Hashable, tuple[list[Job], list[Worker]]] = {}
    for j in jobs:
        groups.setdefault(job_group.get(j.id), ([], []))[0].append(j)
    for w in workers:
        groups.setdefault(worker_group.get(w.id), ([], []))[1].append(w)
    problems = [(js, ws) for js, ws in groups.values() if js and ws]
    waves = max(1, -(-len(problems) // max(1, threads)))  # problems one thread solves in turn

    # Search effort by the size of the whole day: a district's stations at full effort would
    # cost minutes; a small org's one station costs nothing either way.
    exploration = 5 if len(jobs) <= 300 else 2

    def one(problem: tuple[list[Job], list[Worker]]) -> Solution:
        js, ws = problem
        return vroom_solve(
            js,
            ws,
            matrix,
            timeout_s=max(1.0, timeout_s / waves),
            threads=1,
            exploration=exploration,
            warm_start=True,
        )

    with ThreadPoolExecutor(max(1, threads)) as pool:
        solved = list(pool.map(one, problems))
    vroom_stops: dict[str, list[Stop]] = {}
    routes: dict[str, list[Job]] = {}
    job_by_id = {j.id: j for j in jobs}
    for part in solved:
        for wid, stops in part.routes.items():
            vroom_stops[wid] = stops
            routes[wid] = [job_by_id[s.job] for s in stops]
    placed = {j.id for r in routes.values() for j in r}
    before = {wid: list(r) for wid, r in routes.items()}
    left = insert_leftovers([j for j in jobs if j.id not in placed], workers, routes, matrix)
    sol = Solution("vroom")
    _finish(sol, routes, by_id, matrix)
    for wid, stops in vroom_stops.items():
        if routes[wid] == before[wid]:
            sol.routes[wid] = stops  # VROOM's own times where the route is VROOM's
    sol.unassigned = {j.id: reason(j, workers, matrix) for j in left}
    sol.seconds = time.perf_counter() - t0
    return sol


@dataclass
class CheckedStop:
    job: str
    eta: float
    travel: float
    violations: list[str] = field(default_factory=list)


@dataclass
class Checked:
    """A day's routes as they stand, re-checked (VROOM plan mode)."""

    routes: dict[str, list[CheckedStop]] = field(default_factory=dict)
    route_violations: dict[str, list[str]] = field(default_factory=dict)  # shift, break, cap
    travel_minutes: float = 0.0
    seconds: float = 0.0

    @property
    def violated(self) -> int:
        return sum(1 for stops in self.routes.values() for s in stops if s.violations) + sum(
            1 for v in self.route_violations.values() if v
        )


def check(
    routes: Mapping[str, Sequence[Job]],
    workers: Sequence[Worker],
    matrix: np.ndarray,
    *,
    threads: int = 1,
) -> Checked:
    """VROOM's plan mode: the given routes, in their order, get ETAs, and whatever they
    break (a window missed — ``delay``; the shift end; no room for the break —
    ``missing_break``; a skill; the cap — ``max_tasks``) comes back as violations. Nothing
    is moved. The break goes after the visits that begin before its window opens."""
    t0 = time.perf_counter()
    jobs = [j for r in routes.values() for j in r]
    on_route = [w for w in workers if routes.get(w.id)]
    out = Checked()
    if not jobs or not on_route:
        return out
    p = _Problem(jobs, on_route, matrix)
    steps: dict[str, list[tuple[str, int]]] = {}
    for w in on_route:
        route = list(routes[w.id])
        timeline = _timeline(w, route, matrix)
        if timeline is not None:
            at = timeline[1]
        else:  # an infeasible route: the break after the visits that begin before it opens
            opens = w.break_window[0] if w.break_window else 0.0
            at = sum(1 for j in route if j.window[0] < opens)
        steps[w.id] = _steps(p, w, route, at)
    result = p.build(steps).check(threads).to_dict()  # type: ignore[attr-defined]
    for r in result.get("routes", []):
        w = p.workers[r["vehicle"]]
        stops, prev = [], w.location
        route_level = {v["cause"] for v in r.get("violations", [])}
        for s in r["steps"]:
            causes = [v["cause"] for v in s.get("violations", [])]
            if s["type"] != "job":
                route_level.update(causes)
                continue
            j = p.jobs[s["id"]]
            stops.append(
                CheckedStop(
                    j.id,
                    (s["arrival"] + s.get("waiting_time", 0)) / 60.0,
                    float(matrix[prev, j.location]),
                    sorted(set(causes)),
                )
            )
            prev = j.location
        out.routes[w.id] = stops
        # a cause at a stop is that stop's; what is left belongs to the route as a whole
        out.route_violations[w.id] = sorted(
            route_level - {c for st in stops for c in st.violations}
        )
    out.travel_minutes = round(
        sum(route_travel(w, list(routes[w.id]), matrix) for w in on_route), 1
    )
    out.seconds = time.perf_counter() - t0
    return out
