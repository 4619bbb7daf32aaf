"""Dispatch's domain logic as plain functions: the travel model, anomaly rules, the
escalation chain, the monthly rule, plan occurrences and the solvers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.dispatch import policy as dispatch_policy
from services.dispatch.compliance import rules
from services.dispatch.coverage.spatial import StationIndex
from services.dispatch.coverage.travel import EstimateTravel, haversine_m
from services.dispatch.dispatches import chain
from services.dispatch.plans.generator import occurrences
from services.dispatch.routes import solver
from services.dispatch.visits import anomalies
from shared.geo import distance_m

POLICY = dispatch_policy.load()
lat = st.floats(min_value=18.0, max_value=45.0)  # China
lon = st.floats(min_value=75.0, max_value=130.0)


@given(lat, lon, lat, lon)
def test_vectorised_haversine_agrees_with_geographiclib(a, b, c, d):
    exact = distance_m(a, b, c, d)
    fast = float(haversine_m(a, b, c, d))
    assert abs(fast - exact) <= 0.005 * exact + 1.0  # sphere vs ellipsoid: < 0.5 %


@given(
    st.floats(min_value=0, max_value=100_000),
    st.floats(min_value=0, max_value=100_000),
    st.sampled_from(["urban", "rural"]),
)
def test_travel_minutes_are_monotone_in_distance(d1, d2, zone):
    model = EstimateTravel(POLICY)
    m1, m2 = model.minutes_for_distance(d1, zone), model.minutes_for_distance(d2, zone)
    lo, hi = sorted((d1, d2))
    assert model.minutes_for_distance(lo, zone) <= model.minutes_for_distance(hi, zone)
    assert m1 >= 0 and m2 >= 0


@given(st.sampled_from(["urban", "rural"]))
def test_radius_limit_respected_exactly_at_the_boundary(zone):
    model = EstimateTravel(POLICY)
    limit = POLICY.limit_minutes(zone)
    metres = limit * model.speed_m_per_min(zone, None) / POLICY.travel.detour_factor[zone]
    assert abs(float(model.minutes_for_distance(metres, zone)) - limit) < 1e-9
    assert float(model.minutes_for_distance(metres * 1.01, zone)) > limit
    assert POLICY.radius_minutes == {"urban": 15.0, "rural": 30.0}


@settings(max_examples=50)
@given(
    st.lists(st.tuples(lat, lon), min_size=1, max_size=30),
    st.lists(st.tuples(lat, lon), min_size=1, max_size=20),
)
def test_kdtree_nearest_station_is_the_geodesically_nearest(stations, beds):
    s, b = np.array(stations), np.array(beds)
    got = StationIndex(s).nearest(b, 1)[:, 0]
    d = haversine_m(b[:, None, 0], b[:, None, 1], s[None, :, 0], s[None, :, 1])
    best = d.min(axis=1)
    assert np.allclose(d[np.arange(len(b)), got], best, rtol=1e-9, atol=1e-6)


T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@given(st.floats(min_value=0, max_value=10_000), st.floats(min_value=50, max_value=1000))
def test_location_flag_only_beyond_tolerance(distance, tolerance):
    flag = anomalies.location(distance, tolerance, None)
    assert (flag is not None) == (distance > tolerance)
    if flag:
        assert flag.code == "too_far"
        assert anomalies.location(distance, tolerance, "陪同就医").code == "alternate_location"


@given(st.floats(min_value=0.001, max_value=0.5), st.integers(min_value=1, max_value=7200))
def test_impossible_travel_iff_faster_than_plausible(dlat, seconds):
    a = anomalies.Fix(T0, 24.7, 118.15)
    b = anomalies.Fix(T0 + timedelta(seconds=seconds), 24.7 + dlat, 118.15)
    metres = distance_m(a.lat, a.lon, b.lat, b.lon)
    kmh = metres / 1000 / (seconds / 3600)
    flag = anomalies.travel(a, b, POLICY.travel.max_plausible_kmh)
    expected = metres > anomalies.JITTER_M and kmh > POLICY.travel.max_plausible_kmh
    assert (flag is not None) == expected


@given(st.integers(min_value=-120, max_value=600), st.integers(min_value=10, max_value=240))
def test_duration_flags(actual, planned):
    flag = anomalies.duration(
        T0, T0 + timedelta(minutes=actual), planned, short_ratio=0.5, long_ratio=2.0
    )
    if actual < 0:
        assert flag.code == "out_before_in"
    elif actual < 0.5 * planned:
        assert flag.code == "too_short"
    elif actual > 2 * planned:
        assert flag.code == "too_long"
    else:
        assert flag is None


@given(st.integers(min_value=0, max_value=120), st.integers(min_value=0, max_value=120))
def test_overlap_beyond_tolerance_only(offset, length):
    mine = (T0, T0 + timedelta(minutes=60))
    other = (T0 + timedelta(minutes=offset), T0 + timedelta(minutes=offset + length))
    seconds = anomalies.overlap_seconds(mine, other)
    flag = anomalies.overlaps(mine, [("x", *other)], 60)
    assert (flag is not None) == (seconds > 60)


def test_late_and_no_items():
    assert anomalies.is_late(T0, T0 + timedelta(minutes=16), 900)
    assert not anomalies.is_late(T0, T0 + timedelta(minutes=14), 900)
    assert anomalies.items([]).code == "no_items" and anomalies.items(["meal"]) is None


CHAIN = {
    "max_rounds": 2,
    "steps": [
        {"action": "offer", "wait_s": 60},
        {"action": "offer", "wait_s": 60},
        {"action": "notify_family", "wait_s": 0},
        {"action": "notify_community", "wait_s": 60},
        {"action": "advise_120", "wait_s": 0},
    ],
}


def test_chain_offers_then_call_tree_then_repeats_then_stops():
    s, fx = chain.start(CHAIN, 3)
    assert (s.status, s.offered, s.due_in_s, [e.action for e in fx]) == (
        "offered",
        0,
        60,
        ["offered"],
    )
    s, fx = chain.timeout(CHAIN, s, 3)
    assert [e.action for e in fx] == ["timed_out", "offered"] and s.offered == 1
    s, fx = chain.decline(CHAIN, s, 3)
    assert [e.action for e in fx] == ["declined", "notify_family", "notify_community"]
    assert s.status == "escalated" and s.due_in_s == 60
    s, fx = chain.timeout(CHAIN, s, 3)
    # round 2 starts over with those who did not decline: candidate 0 again
    assert [e.action for e in fx] == ["advise_120", "offered"] and s.offered == 0 and s.round == 1
    s, fx = chain.timeout(CHAIN, s, 3)
    assert s.offered == 2  # 1 declined: skipped
    s, fx = chain.timeout(CHAIN, s, 3)
    s, fx = chain.timeout(CHAIN, s, 3)
    assert [e.action for e in fx][-2:] == ["advise_120", "exhausted"] and s.due_in_s is None


@given(
    st.integers(min_value=0, max_value=5),
    st.lists(st.sampled_from(["timeout", "decline"]), max_size=30),
)
def test_chain_always_ends_and_never_offers_a_decliner(candidates, events):
    s, _ = chain.start(CHAIN, candidates)
    steps = 0
    declined: set[int] = set()
    while s.due_in_s is not None and steps < 100:
        event = events[steps % len(events)] if events else "timeout"
        if event == "decline" and s.offered is not None:
            declined.add(s.offered)
            s, fx = chain.decline(CHAIN, s, candidates)
        else:
            s, fx = chain.timeout(CHAIN, s, candidates)
        assert all(e.candidate not in declined for e in fx if e.action == "offered")
        steps += 1
    assert s.due_in_s is None and s.status == "escalated"


def test_chain_validation():
    assert chain.validate(CHAIN) == []
    ((field, text),) = chain.validate({"steps": [{"action": "notify_family"}]})
    assert field == "steps"
    assert (text.zh, text.en) == ("至少需要一个派单（offer）步骤", "at least one offer step")
    field, text = chain.validate({"steps": [{"action": "fly"}]})[0]
    assert field == "steps.0.action" and "notify_family" in text.en and "应为" in text.zh


def test_month_rule_prorated_daily_minimum_and_kinds():
    c = POLICY.compliance
    month = date(2026, 11, 1)
    days = rules.period(month, date(2026, 11, 28), None, date(2026, 12, 1))
    assert days == (date(2026, 11, 28), date(2026, 11, 30))
    ok = rules.evaluate(
        c,
        month=month,
        days=days,
        minutes_by_day={date(2026, 11, 28): 61, date(2026, 11, 29): 60, date(2026, 11, 30): 60},
        daily_living_done=["meal", "cleaning", "bathing"],
    )
    assert ok.compliant and ok.required_hours == 3.0 and ok.days_short == []
    short = rules.evaluate(
        c,
        month=month,
        days=days,
        minutes_by_day={date(2026, 11, 28): 200},
        daily_living_done=["meal"],
    )
    assert not short.compliant and short.days_short == [date(2026, 11, 29), date(2026, 11, 30)]
    assert not short.daily_living_kinds_met
    assert [x.code for x in short.reasons] == ["daily_minimum", "daily_living_kinds"]
    assert short.reasons[0].message.zh == "2 天的服务不足 60 分钟"
    assert short.reasons[1].message.en == "1 daily-living kind(s), 3 required"
    full = rules.period(month, date(2026, 1, 1), None, date(2026, 12, 5))
    r = rules.evaluate(
        c,
        month=month,
        days=full,
        minutes_by_day={date(2026, 11, d): 60 for d in range(1, 31)},
        daily_living_done=["meal", "cleaning", "bathing"],
    )
    assert r.required_hours == 30 and r.compliant


def test_plan_occurrences_weekly_and_working_days():
    days = occurrences(
        "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        start_time=time(9),
        valid_from=date(2026, 9, 28),
        valid_to=None,
        since=date(2026, 9, 28),
        until=date(2026, 10, 9),
    )
    assert days == [
        date(2026, 9, 28),
        date(2026, 9, 30),
        date(2026, 10, 2),
        date(2026, 10, 5),
        date(2026, 10, 7),
        date(2026, 10, 9),
    ]
    working = occurrences(
        "FREQ=DAILY",
        start_time=time(9),
        valid_from=date(2026, 9, 28),
        valid_to=date(2026, 10, 2),
        since=date(2026, 9, 1),
        until=date(2026, 12, 1),
        is_working=lambda d: d.weekday() < 5 and d.day != 1,
    )
    assert working == [date(2026, 9, 28), date(2026, 9, 29), date(2026, 9, 30), date(2026, 10, 2)]


def _problem(n_jobs=20, n_workers=4, seed=1):
    rng = np.random.default_rng(seed)
    homes = np.column_stack([24.70 + rng.random(n_jobs) * 0.05, 118.12 + rng.random(n_jobs) * 0.05])
    pts = np.vstack([np.tile([24.72, 118.15], (n_workers, 1)), homes])
    matrix = EstimateTravel(POLICY).matrix_now(pts, pts, "urban")
    jobs = [
        solver.Job(f"j{k}", n_workers + k, 45, (480 + 20 * k, 540 + 20 * k)) for k in range(n_jobs)
    ]
    workers = [solver.Worker(f"w{k}", k, (480, 1080), (690, 810), 30, 8) for k in range(n_workers)]
    return jobs, workers, matrix


def test_greedy_and_vroom_assign_feasibly_and_vroom_travels_no_more():
    jobs, workers, matrix = _problem()
    g = solver.greedy(jobs, workers, matrix)
    v = solver.vroom_solve(jobs, workers, matrix, timeout_s=5, threads=1)
    assert g.assigned + len(g.unassigned) == len(jobs) == v.assigned + len(v.unassigned)
    assert v.assigned >= g.assigned and v.travel_minutes <= g.travel_minutes + 1e-6
    for sol in (g, v):
        for stops in sol.routes.values():
            assert len(stops) <= 8
            for stop in stops:
                job = next(j for j in jobs if j.id == stop.job)
                assert job.window[0] - 1e-6 <= stop.eta <= job.window[1] + 1e-6


def test_unassigned_reasons():
    jobs, workers, matrix = _problem(3, 1)
    skilled = [solver.Job("x", 1, 30, (600, 660), frozenset({"item:injection"}))]
    g = solver.greedy(jobs + skilled, workers, matrix)
    assert g.unassigned["x"] == solver.NO_SKILL
    late = [solver.Job("late", 1, 30, (1300, 1320))]
    assert solver.greedy(late, workers, matrix).unassigned["late"] == solver.OUTSIDE_SHIFTS


def _two_stations(sick_b: bool):
    """Station A and station B 2 km apart, four visits near each; B's caregiver may be off."""
    a, b = (24.72, 118.15), (24.72, 118.17)
    homes = [(a[0] + 0.002 * k, a[1]) for k in range(4)] + [
        (b[0] + 0.002 * k, b[1]) for k in range(4)
    ]
    pts = np.array([a, a, b, *homes])
    matrix = EstimateTravel(POLICY).matrix_now(pts, pts, "urban")
    jobs = [
        solver.Job(f"j{k}", 3 + k, 30, (480 + 60 * k, 540 + 60 * k)) for k in range(8)
    ]  # hourly, so one caregiver of A can take both stations' visits
    workers = [
        solver.Worker("a1", 0, (480, 1080), (690, 810), 30, 8),
        solver.Worker("a2", 1, (480, 1080), (690, 810), 30, 8),
    ]
    if not sick_b:
        workers.append(solver.Worker("b1", 2, (480, 1080), (690, 810), 30, 8))
    groups = {j.id: ("A" if k < 4 else "B") for k, j in enumerate(jobs)}
    return jobs, workers, matrix, groups, {"a1": "A", "a2": "A", "b1": "B"}


def test_solve_per_station_keeps_stations_apart_and_places_a_sick_station_s_visits():
    jobs, workers, matrix, jg, wg = _two_stations(sick_b=False)
    sol = solver.solve(jobs, workers, matrix, job_group=jg, worker_group=wg, timeout_s=5)
    assert sol.assigned == 8 and not sol.unassigned
    on = {s.job: wid for wid, stops in sol.routes.items() for s in stops}
    assert {on[f"j{k}"] for k in range(4, 8)} == {"b1"}  # station B's visits stay with B
    assert {on[f"j{k}"] for k in range(4)} <= {"a1", "a2"}
    # B's only caregiver calls in sick: its visits go to A's caregivers by the district pass
    jobs, workers, matrix, jg, wg = _two_stations(sick_b=True)
    sol = solver.solve(jobs, workers, matrix, job_group=jg, worker_group=wg, timeout_s=5)
    assert sol.assigned == 8 and not sol.unassigned
    by_id = {w.id: w for w in workers}
    job = {j.id: j for j in jobs}
    for wid, stops in sol.routes.items():
        assert solver._simulate(by_id[wid], [job[s.job] for s in stops], matrix) is not None


def test_plan_mode_gives_etas_flags_what_a_route_breaks_and_moves_nothing():
    jobs, workers, matrix = _problem(6, 2)
    ok = {"w0": [jobs[0], jobs[3]], "w1": [jobs[1], jobs[4]]}
    assert all(solver._simulate(w, ok[w.id], matrix) for w in workers)
    checked = solver.check(ok, workers, matrix)
    assert checked.violated == 0
    assert [[s.job for s in checked.routes[w]] for w in ("w0", "w1")] == [
        [j.id for j in ok[w]] for w in ("w0", "w1")
    ]
    for w, stops in checked.routes.items():
        for s, j in zip(stops, ok[w], strict=True):
            assert j.window[0] - 1e-6 <= s.eta <= j.window[1] + 1e-6
    # the same visits in reverse order: the first ones now start after their windows close
    broken = {"w0": [jobs[3], jobs[0]], "w1": ok["w1"]}
    checked = solver.check(broken, workers, matrix)
    assert [s.job for s in checked.routes["w0"]] == [j.id for j in broken["w0"]]
    assert any("delay" in s.violations for s in checked.routes["w0"])
    assert all(not s.violations for s in checked.routes["w1"]) and checked.violated >= 1
    # a visit needing a qualification the caregiver lacks
    needy = [solver.Job("x", jobs[0].location, 30, (600, 660), frozenset({"item:injection"}))]
    assert solver.check({"w0": needy}, workers, matrix).routes["w0"][0].violations == ["skills"]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 7), st.integers(0, 10_000))
def test_a_route_feasible_in_our_timeline_is_feasible_for_vroom(n, seed):
    """The greedy baseline and the district insertion pass judge feasibility with
    ``_timeline``; VROOM's plan mode must agree on every route it accepts."""
    jobs, workers, matrix = _problem(n, 1, seed)
    route = list(jobs)
    if solver._simulate(workers[0], route, matrix) is None:
        return
    checked = solver.check({"w0": route}, workers, matrix)
    assert checked.violated == 0, (checked.routes, checked.route_violations)


def test_a_warm_start_vroom_refuses_is_dropped_not_fatal(caplog):
    """VROOM-Project/vroom#1251: with a break, VROOM's check of initial routes refuses some
    feasible ones; the solve goes on without that caregiver's warm start."""
    pts = np.array([[24.72, 118.15], [24.7335, 118.15], [24.7335, 118.1545]])
    matrix = EstimateTravel(POLICY).matrix_now(pts, pts, "urban")
    jobs = [
        solver.Job("a", 1, 30, (451, 511), preferred="w"),
        solver.Job("b", 2, 30, (470, 530), preferred="w"),
    ]
    workers = [solver.Worker("w", 0, (480, 1080), (690, 810), 30, 8)]
    assert solver.warm_routes(jobs, workers, matrix)  # a warm start is offered
    with caplog.at_level("INFO", logger=solver.log.name):
        sol = solver.vroom_solve(jobs, workers, matrix, timeout_s=5, threads=1)
    assert "refused 1 of 1 warm-start routes" in caplog.text
    assert sol.assigned == 2 and [s.job for s in sol.routes["w"]] == ["a", "b"]


def test_a_new_timer_wakes_the_timer_loop_only_when_due_before_its_planned_look():
    import asyncio

    from services.dispatch.dispatches.service import timer_payload
    from services.dispatch.timers import wake_if_sooner

    now = datetime.now(UTC)
    planned = (now + timedelta(seconds=1)).timestamp()
    for due, wakes in ((now + timedelta(seconds=60), False), (now, True)):
        wake = asyncio.Event()
        wake_if_sooner(wake, planned, timer_payload(due))
        assert wake.is_set() is wakes
    wake = asyncio.Event()
    wake_if_sooner(wake, float("inf"), timer_payload(now + timedelta(hours=1)))  # mid-look
    assert wake.is_set()
    wake = asyncio.Event()
    wake_if_sooner(wake, planned, "")  # an old-style or foreign NOTIFY: look now
    assert wake.is_set()
