"""Assigning a day's visits to caregivers: VROOM (``pyvroom``) and a greedy baseline, on the
same problem and the same travel matrix, so their travel minutes compare.

Times are minutes after midnight (Asia/Shanghai). A job is a visit: its home, its service
minutes, the window in which it may start, the skills it needs (qualified roles), and the
usual caregiver (continuity of care — soft: VROOM starts from routes that keep every visit
with its usual caregiver, the greedy keeps it when that costs at most a few minutes more).
A worker is a caregiver: start and end at the station, shift, one break, a cap on visits.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
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


def _simulate(worker: Worker, stops: Sequence[Job], matrix: np.ndarray) -> list[float] | None:
    """Start times of ``stops`` in order, inserting the break where it fits; None if the
    route breaks a window, the shift or the break window."""
    t, here = worker.shift[0], worker.location
    etas = []
    took_break = worker.break_window is None
    for job in stops:
        t += matrix[here, job.location]
        if not took_break and worker.break_window is not None:
            lo, hi = worker.break_window
            # take the break before this job if the job would otherwise start past the window
            if max(t, job.window[0]) + job.service > hi:
                t = max(t, lo) + worker.break_minutes
                took_break = True
                if t > hi + worker.break_minutes:
                    return None
        t = max(t, job.window[0])
        if t > job.window[1]:
            return None
        etas.append(t)
        t += job.service
        here = job.location
    if not took_break and worker.break_window is not None:
        t = max(t, worker.break_window[0])
        if t > worker.break_window[1]:
            return None
        t += worker.break_minutes
    t += matrix[here, worker.location]
    return etas if t <= worker.shift[1] else None


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
    import vroom  # an optional heavy import: only the solver needs it

    t0 = time.perf_counter()
    if exploration is None:  # search effort VROOM can afford within the time budget
        exploration = 5 if len(jobs) <= 300 else 2
    skill_ids = {
        s: k + 1
        for k, s in enumerate(
            sorted({s for w in workers for s in w.skills} | {s for j in jobs for s in j.skills})
        )
    }
    seconds = np.rint(matrix * 60).astype(np.int64)
    job_index = {k + 1: j for k, j in enumerate(jobs)}
    worker_index = {k + 1: w for k, w in enumerate(workers)}
    preferred: dict[str, list[int]] = {}
    for k, j in job_index.items():
        if j.preferred:
            preferred.setdefault(j.preferred, []).append(k)

    def build(with_steps: bool):
        problem = vroom.Input()
        problem.set_durations_matrix(profile="car", matrix_input=seconds.tolist())
        for k, w in worker_index.items():
            steps = ()
            if with_steps and w.id in preferred:
                mine = sorted(preferred[w.id], key=lambda i: job_index[i].window[0])[: w.max_tasks]
                steps = [
                    vroom.VehicleStepStart(),
                    *(vroom.VehicleStepSingle(i) for i in mine),
                    vroom.VehicleStepEnd(),
                ]
            breaks = []
            if w.break_window is not None:
                breaks = [
                    vroom.Break(
                        k,
                        time_windows=[
                            vroom.TimeWindow(
                                int(w.break_window[0] * 60), int(w.break_window[1] * 60)
                            )
                        ],
                        service=int(w.break_minutes * 60),
                    )
                ]
            problem.add_vehicle(
                vroom.Vehicle(
                    k,
                    start=w.location,
                    end=w.location,
                    skills={skill_ids[s] for s in w.skills},
                    time_window=vroom.TimeWindow(int(w.shift[0] * 60), int(w.shift[1] * 60)),
                    breaks=breaks,
                    max_tasks=w.max_tasks,
                    steps=steps,
                )
            )
        problem.add_job(
            [
                vroom.Job(
                    k,
                    location=j.location,
                    default_service=int(j.service * 60),
                    skills={skill_ids[s] for s in j.skills},
                    time_windows=[vroom.TimeWindow(int(j.window[0] * 60), int(j.window[1] * 60))],
                )
                for k, j in job_index.items()
            ]
        )
        return problem

    try:
        answer = build(warm_start).solve(
            exploration_level=exploration, nb_threads=threads, timeout=timedelta(seconds=timeout_s)
        )
    except Exception:  # an infeasible warm start is refused by VROOM: solve from scratch
        log.info("VROOM refused the warm start; solving without it", exc_info=True)
        answer = build(False).solve(
            exploration_level=exploration, nb_threads=threads, timeout=timedelta(seconds=timeout_s)
        )
    result = answer.to_dict()
    sol = Solution("vroom")
    routes: dict[str, list[Job]] = {}
    for r in result.get("routes", []):
        w = worker_index[r["vehicle"]]
        stops = [s for s in r["steps"] if s["type"] == "job"]
        routes[w.id] = [job_index[s["id"]] for s in stops]
        sol.routes[w.id] = []
        prev = w.location
        for s in stops:
            j = job_index[s["id"]]
            sol.routes[w.id].append(
                Stop(
                    j.id,
                    (s["arrival"] + s.get("waiting_time", 0)) / 60.0,
                    float(matrix[prev, j.location]),
                )
            )
            prev = j.location
    for u in result.get("unassigned", []):
        j = job_index[u["id"]]
        sol.unassigned[j.id] = reason(j, workers, matrix)
    sol.travel_minutes = round(
        sum(
            route_travel(worker_index[k], routes[w.id], matrix)
            for k, w in worker_index.items()
            if w.id in routes
        ),
        1,
    )
    sol.seconds = time.perf_counter() - t0
    return sol
