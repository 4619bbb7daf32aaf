"""The emulator's message stream, without a broker: deterministic, on contract, realistic."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from services.emulator.incidents import KINDS
from services.emulator.model import build_homes
from services.emulator.options import LOCAL_TZ, EmulatorOptions, parse_mqtt_url
from services.emulator.payloads import MAX_PAYLOAD_BYTES
from services.emulator.runner import paced, rate_due, rate_schedule, speed_due
from services.emulator.stream import CONTROL_KINDS, Publish, generate

BASE = EmulatorOptions(homes=3, seed=7, incident_rate=0.5, garbage_rate=0.02)

# --- an independent reading of the telemetry contract ------------------------------------

_INT_RANGES = {
    "heart_rate": (20, 250),
    "resp_rate": (0, 80),
    "spo2": (50, 100),
    "systolic": (50, 260),
    "diastolic": (30, 160),
}
_EVENTS = {"emergency", "fall", "vitals", "motion", "door", "bed", "heartbeat"}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def contract_error(body: object, device_id: str, event: str, known: set[str]) -> str | None:
    """Why a message breaks the contract, or None."""
    if device_id not in known:
        return "unknown device"
    if event not in _EVENTS:
        return "unknown event"
    if not isinstance(body, dict):
        return "not an object"
    msg_id, ts = body.get("msg_id"), body.get("ts")
    if not isinstance(msg_id, str) or not 0 < len(msg_id) <= 64:
        return "msg_id"
    if not isinstance(ts, str):
        return "ts type"
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return "ts format"
    if parsed.tzinfo is None:
        return "ts without offset"
    f = {k: v for k, v in body.items() if k not in ("msg_id", "ts", "device_id", "event")}
    if event == "emergency":
        return None if isinstance(f.get("button"), str) else "button"
    if event == "fall":
        c = f.get("confidence")
        return None if _is_num(c) and 0 <= c <= 1 else "confidence"
    if event == "vitals":
        if not f or not set(f) <= {*_INT_RANGES, "temp_c"}:
            return "vital fields"
        for k, v in f.items():
            if k == "temp_c":
                if not (_is_num(v) and 30 <= v <= 45):
                    return "temp_c"
            elif not (_is_int(v) and _INT_RANGES[k][0] <= v <= _INT_RANGES[k][1]):
                return k
        return None
    if event == "motion":
        ok = isinstance(f.get("room"), str) and f.get("state") in ("active", "idle")
        return None if ok else "motion"
    if event == "door":
        return None if f.get("state") in ("open", "closed") else "door"
    if event == "bed":
        return None if f.get("state") in ("in", "out") else "bed"
    battery, rssi = f.get("battery"), f.get("rssi")
    ok = _is_int(battery) and 0 <= battery <= 100 and _is_int(rssi) and -120 <= rssi <= 0
    return None if ok else "heartbeat"


def violations(p: Publish, known: set[str]) -> list[str]:
    """Contract breaches of one publish (a batch is checked item by item)."""
    if len(p.payload) > MAX_PAYLOAD_BYTES:
        return ["oversized"]
    try:
        body = json.loads(p.payload)
    except ValueError:
        return ["malformed json"]
    parts = p.topic.split("/")
    if parts[-1] == "batch":
        if not isinstance(body, list) or not body:
            return ["batch not a list"]
        errors = []
        for item in body:
            if not isinstance(item, dict):
                errors.append("batch item")
                continue
            e = contract_error(item, item.get("device_id"), item.get("event"), known)
            errors += [e] if e else []
        return errors
    if len(parts) != 5:
        return ["topic"]
    e = contract_error(body, parts[3], parts[4], known)
    return [e] if e else []


def known_devices(options: EmulatorOptions) -> set[str]:
    return set().union(*(h.device_ids() for h in build_homes(options)))


def take(options: EmulatorOptions, n: int) -> list[Publish]:
    return list(itertools.islice(generate(options), n))


def until(options: EmulatorOptions, hours: float):
    end = options.start.timestamp() + hours * 3600
    return itertools.takewhile(lambda p: p.at < end, generate(options))


def local(at: float) -> datetime:
    return datetime.fromtimestamp(at, LOCAL_TZ)


# --- determinism -------------------------------------------------------------------------


def test_same_seed_same_stream():
    assert take(BASE, 1000) == take(BASE, 1000)


def test_other_seed_other_stream():
    a, b = take(BASE, 1000), take(replace(BASE, seed=8), 1000)
    assert [p.payload for p in a] != [p.payload for p in b]
    assert {p.gateway_id for p in a}.isdisjoint({p.gateway_id for p in b})


def test_incident_rate_does_not_change_the_routine():
    """Separate random streams: the elder's day is the same with or without incidents."""

    def motions(o):
        return [p.payload for p in until(o, 12) if p.topic.endswith("/motion")][:30]

    quiet = replace(BASE, incident_rate=0, garbage_rate=0)
    assert motions(quiet) == motions(replace(quiet, garbage_rate=0.1))


# --- the contract --------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [False, True])
def test_every_message_is_on_contract_and_garbage_is_not(batch):
    options = replace(BASE, batch=batch, incident_rate=2, garbage_rate=0.05)
    known = known_devices(options)
    kinds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    msg_ids: dict[str, set[str]] = defaultdict(set)
    for p in take(options, 6000):
        kinds[p.kind] += 1
        assert p.qos == 1
        assert p.topic.startswith(f"eldercare/v1/{p.gateway_id}/")
        if p.kind in CONTROL_KINDS:
            continue
        if p.kind == "garbage":
            reasons[p.reason] += 1
            assert violations(p, known), f"garbage {p.reason} passes the contract: {p.payload!r}"
            continue
        assert violations(p, known) == [], (p.topic, p.payload)
        assert not p.retain
        if p.kind == "event" and not batch:
            device = p.topic.split("/")[3]
            msg_id = json.loads(p.payload)["msg_id"]
            assert msg_id not in msg_ids[device], "msg_id reused by a fresh message"
            msg_ids[device].add(msg_id)
    assert kinds["garbage"] > 50
    assert set(reasons) >= {"malformed_json", "wrong_types", "out_of_range", "oversized"}
    assert kinds["batch" if batch else "event"] > 1000


def test_batches_hold_everything_but_emergency_and_fall():
    options = replace(BASE, batch=True, force_incidents=("emergency", "fall"), garbage_rate=0)
    stream = list(until(options, 3))
    singles = {p.topic.rsplit("/", 1)[1] for p in stream if p.kind == "event"}
    assert singles == {"emergency", "fall"}
    batches = [json.loads(p.payload) for p in stream if p.kind == "batch"]
    assert batches and all(1 <= len(b) <= options.batch_size for b in batches)
    assert not any(i["event"] in ("emergency", "fall") for b in batches for i in b)


def test_gateway_status_online_first_and_dropout_then_backlog():
    options = replace(BASE, force_incidents=("gateway_dropout",), garbage_rate=0)
    stream = list(until(options, 2))
    gw = stream[0].gateway_id
    mine = [p for p in stream if p.gateway_id == gw]
    assert (mine[0].kind, mine[0].payload, mine[0].retain) == ("online", b"online", True)
    drop = next(i for i, p in enumerate(mine) if p.kind == "dropout")
    back = next(i for i, p in enumerate(mine) if p.kind == "online" and i > drop)
    assert mine[drop].topic == mine[drop].topic == f"eldercare/v1/{gw}/status"
    assert mine[drop].payload == b"offline" and mine[drop].retain
    assert all(p.kind in CONTROL_KINDS for p in mine[drop + 1 : back])  # silent while off
    # The backlog follows the reconnect: older timestamps, delivered late.
    first_after = json.loads(mine[back + 1].payload)
    assert datetime.fromisoformat(first_after["ts"]).timestamp() < mine[back].at - 60


def test_duplicates_repeat_an_earlier_message_and_late_ones_are_older():
    options = replace(BASE, force_incidents=("duplicate", "out_of_order"), garbage_rate=0)
    stream = list(until(options, 1))
    seen: set[tuple[str, bytes]] = set()
    newest: dict[str, str] = {}
    duplicates = late = 0
    for p in stream:
        if p.kind == "duplicate":
            assert (p.topic, p.payload) in seen
            duplicates += 1
        if p.kind == "out_of_order":
            device, ts = p.topic.split("/")[3], json.loads(p.payload)["ts"]
            assert datetime.fromisoformat(ts) < datetime.fromisoformat(newest[device])
            late += 1
        if p.kind in ("event", "out_of_order"):
            seen.add((p.topic, p.payload))
            body = json.loads(p.payload)
            device = p.topic.split("/")[3]
            if device not in newest or body["ts"] > newest[device]:
                newest[device] = body["ts"]
    assert duplicates == late == options.homes


def test_forced_emergency_comes_at_once_in_every_home():
    options = replace(BASE, force_incidents=("emergency",), incident_rate=0)
    stream = list(until(options, 0.1))
    emergencies = [p for p in stream if p.topic.endswith("/emergency")]
    assert {p.gateway_id for p in emergencies} == {h.gateway_id for h in build_homes(options)}
    assert all(p.at - options.start.timestamp() < 10 for p in emergencies)


# --- realism ---------------------------------------------------------------------------------


def test_incidents_arrive_at_the_configured_rate():
    options = EmulatorOptions(
        homes=5, seed=3, incident_rate=0.5, garbage_rate=0, heartbeat_s=1800, vitals_s=1800
    )
    hours = 10 * 24
    markers = Counter(p.reason for p in until(options, hours) if p.kind == "incident")
    expected = options.homes * hours * options.incident_rate  # 600, Poisson sd ≈ 24.5
    assert 0.8 * expected < sum(markers.values()) < 1.2 * expected
    assert set(markers) == set(KINDS)


def test_nights_have_bathroom_visits_and_bed_exits():
    options = EmulatorOptions(
        homes=4, seed=5, incident_rate=0, garbage_rate=0, heartbeat_s=3600, vitals_s=900
    )
    night_exits = night_bathroom = day_bed_vitals = night_bed_vitals = 0
    vitals_hr: list[int] = []
    for p in until(options, 4 * 24):
        if p.kind != "event":
            continue
        hour = local(p.at).hour
        night = hour >= 23 or hour < 4
        event = p.topic.rsplit("/", 1)[1]
        body = json.loads(p.payload)
        if night and event == "bed" and body["state"] == "out":
            night_exits += 1
        if night and event == "motion" and body == {**body, "room": "bathroom", "state": "active"}:
            night_bathroom += 1
        if "-radar/" in p.topic and event == "vitals":
            night_bed_vitals += night
            day_bed_vitals += 10 <= hour < 12  # up and about: the radar sees nobody in bed
            vitals_hr.append(body["heart_rate"])
    assert night_exits >= 4 and night_bathroom >= 4  # 4 homes × 4 nights, ~1–2 a night each
    assert night_bed_vitals > 50 and day_bed_vitals == 0
    mean = sum(vitals_hr) / len(vitals_hr)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vitals_hr) / len(vitals_hr))
    assert 45 < mean < 85 and 1 < sd < 15  # baselines with noise, not constants


def test_elders_have_their_own_baselines():
    homes = build_homes(EmulatorOptions(homes=20, seed=1))
    rates = {round(h.baseline.heart_rate) for h in homes}
    assert len(rates) > 5
    assert all(55 <= h.baseline.heart_rate <= 90 for h in homes)


def test_day_has_meals_in_the_kitchen_and_a_door_when_going_out():
    options = EmulatorOptions(homes=4, seed=2, incident_rate=0, garbage_rate=0, heartbeat_s=3600)
    kitchen_hours, doors = set(), 0
    for p in until(options, 48):
        if p.topic.endswith("/motion") and b'"kitchen"' in p.payload and b"active" in p.payload:
            kitchen_hours.add(local(p.at).hour)
        doors += p.topic.endswith("/door")
    for meal in ({6, 7, 8}, {11, 12}, {17, 18}):  # breakfast, lunch, dinner
        assert meal & kitchen_hours, (meal, sorted(kitchen_hours))
    assert not {0, 1, 2, 3} & kitchen_hours  # nobody cooks at night
    assert doors >= 4


# --- pacing ----------------------------------------------------------------------------------


def test_rate_schedule_is_exact_and_even():
    due = rate_schedule(250, 2)
    assert len(due) == 500
    assert sum(1 for t in due if t < 1) == 250
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(due)}
    assert gaps == {0.004}
    assert rate_due(0, 10) == 0 and rate_due(10, 10) == 1


def test_speed_due_maps_simulated_time_to_real_time():
    assert speed_due(3600.0, 0.0, 60) == 60
    assert speed_due(-5.0, 0.0, 60) == 0  # nothing is due before the start


def test_paced_counts_only_messages_in_rate_mode():
    options = replace(BASE, rate=100)
    items = list(itertools.islice(paced(generate(options), options), 400))
    messages = [due for due, p in items if p.kind not in CONTROL_KINDS]
    assert messages[:100] == [i / 100 for i in range(100)]
    controls = [due for due, p in items if p.kind in CONTROL_KINDS]
    assert controls and all(0 <= d < 4 for d in controls)
    homes = {p.gateway_id for _, p in items[:300] if p.kind not in CONTROL_KINDS}
    assert len(homes) == options.homes  # the rate is spread over every home


def test_paced_follows_the_simulated_clock_by_default():
    options = replace(BASE, speed=120)
    for due, p in itertools.islice(paced(generate(options), options), 500):
        assert due == pytest.approx((p.at - options.start.timestamp()) / 120)


# --- options -----------------------------------------------------------------------------


def test_options_are_validated_and_urls_parsed():
    with pytest.raises(ValueError):
        EmulatorOptions(homes=0)
    with pytest.raises(ValueError):
        EmulatorOptions(start=datetime(2026, 1, 1))  # naive
    with pytest.raises(ValueError, match="unknown incident"):
        take(replace(BASE, force_incidents=("meteor",)), 10)
    t = parse_mqtt_url("mqtt://gw%2D1:s3cret@broker.example:8883")
    assert (t.host, t.port, t.username, t.password) == ("broker.example", 8883, "gw-1", "s3cret")
    assert parse_mqtt_url("127.0.0.1").port == 1883


def test_start_defaults_are_timezone_aware_and_local():
    assert EmulatorOptions().start.utcoffset() == timedelta(hours=8)


def test_cli_arguments_become_options():
    import argparse

    from services.emulator import add_arguments
    from services.emulator.cli import options_from_args
    from shared.config import Settings

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = "--homes 5 --rate 200 --seed 9 --batch --force-incident fall --quiet"
    args = parser.parse_args([*argv.split(), "--start", "2026-11-26T08:00:00+08:00"])
    o = options_from_args(args, Settings(mqtt_port=11883, registry_port=18001))
    assert (o.homes, o.rate, o.seed, o.batch, o.force_incidents) == (5, 200, 9, True, ("fall",))
    assert o.mqtt_url == "mqtt://127.0.0.1:11883"
    assert o.registry_url == "http://127.0.0.1:18001"
    assert o.start.isoformat() == "2026-11-26T08:00:00+08:00" and not o.progress
    defaults = options_from_args(parser.parse_args([]), Settings(mqtt_url="mqtt://b:1884"))
    # real time by default: readings stamped with the wall clock, never hours ahead
    assert (defaults.homes, defaults.seed, defaults.speed, defaults.rate) == (10, 1, 1, None)
    assert defaults.mqtt_url == "mqtt://b:1884" and defaults.start.tzinfo is not None
    with pytest.raises(SystemExit):
        parser.parse_args(["--force-incident", "meteor"])


# --- real time and restarts ----------------------------------------------------------------


def _msg_ids(options: EmulatorOptions, n: int) -> set[tuple[str, str]]:
    ids = set()
    for p in take(options, n):
        if p.kind == "event":
            ids.add((p.topic.split("/")[3], json.loads(p.payload)["msg_id"]))
    return ids


def test_a_restarted_run_never_repeats_a_message_id():
    """The ingest drops a (device, msg_id) it has seen as a redelivery for days: a restart
    of the emulator (same seed, later start) must use fresh ids, a replay of the same run
    the same ones."""
    first = _msg_ids(BASE, 500)
    assert _msg_ids(BASE, 500) == first  # deterministic
    later = replace(BASE, start=BASE.start + timedelta(minutes=3))
    assert first and not first & _msg_ids(later, 500)
    assert all(len(m) <= 64 for _, m in first)


def test_the_default_clock_is_real_time_and_gateways_report_at_once():
    options = replace(EmulatorOptions(homes=2), garbage_rate=0)
    assert options.speed == 1
    start = options.start.timestamp()
    first = {}
    for p in take(options, 200):
        if p.kind == "event" and p.topic.endswith("/heartbeat"):
            first.setdefault(p.topic.split("/")[3], p.at)
    gateways = {h.gateway_id for h in build_homes(options)}
    assert gateways <= set(first)
    assert all(first[gw] == start for gw in gateways)  # at power-on, not up to a minute later


def test_registered_homes_are_kept_privately_and_read_back(tmp_path):
    import os
    import stat

    from services.emulator.mqtt import Credentials
    from services.emulator.register import RegisteredHome, load_homes, save_homes

    homes = {
        h.gateway_id: RegisteredHome(
            index=h.index,
            gateway_id=h.gateway_id,
            elder_id=f"elder-{h.index}",
            bed_id=f"bed-{h.index}",
            device_ids=tuple(sorted(h.device_ids())),
            credentials=Credentials(h.gateway_id, h.gateway_id, "s3cret"),
        )
        for h in build_homes(EmulatorOptions(homes=3, seed=5))
    }
    path = tmp_path / "emulator" / "homes.json"
    save_homes(path, homes, seed=5)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it holds MQTT passwords
    assert load_homes(path, seed=5, homes=3) == homes
    assert list(load_homes(path, seed=5, homes=2)) == list(homes)[:2]
    assert load_homes(path, seed=5, homes=4) is None  # a home was never registered
    assert load_homes(path, seed=6, homes=3) is None
    assert load_homes(tmp_path / "missing.json", seed=5, homes=3) is None
    path.write_text("{not json")
    assert load_homes(path, seed=5, homes=3) is None


def test_up_waits_for_both_ingest_links():
    from services.launcher import ingest_subscribed

    bulk = 'eldercare_ingest_subscribed{link="bulk"} 1.0'
    urgent = 'eldercare_ingest_subscribed{link="urgent"} 1.0'
    assert ingest_subscribed(f"# HELP x\n{bulk}\n{urgent}\n")
    assert not ingest_subscribed(f"{bulk}\n")
    assert not ingest_subscribed(f"{bulk}\n{urgent.replace('1.0', '0.0')}\n")
    assert not ingest_subscribed("")
