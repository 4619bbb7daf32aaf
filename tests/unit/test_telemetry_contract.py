from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.telemetry.contract import Event, Refused, Status, parse, split_topic

TOPIC = "eldercare/v1/gw-001/vit-001/vitals"


def body(**fields) -> bytes:
    return orjson.dumps({"msg_id": "m-1", "ts": "2026-11-26T08:00:00+08:00", **fields})


def test_vitals_parse_with_offset_to_utc():
    [event] = parse(TOPIC, body(heart_rate=72, spo2=97.5))
    assert isinstance(event, Event)
    assert event.device_ts == datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    assert event.data == {"heart_rate": 72, "spo2": 97.5}
    assert (event.gateway_id, event.device_id, event.event) == ("gw-001", "vit-001", "vitals")


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TOPIC, b"{", "malformed_json"),
        (TOPIC, b"[]", "not_an_object"),
        (TOPIC, body(heart_rate="72"), "invalid_field"),
        (TOPIC, body(heart_rate=True), "invalid_field"),
        (TOPIC, body(heart_rate=300), "out_of_range"),
        (TOPIC, body(), "invalid_field"),
        (
            TOPIC,
            orjson.dumps({"msg_id": "m", "ts": "2026-11-26T08:00:00", "heart_rate": 70}),
            "invalid_field",
        ),
        (TOPIC, orjson.dumps({"ts": "2026-11-26T08:00:00Z", "heart_rate": 70}), "invalid_field"),
        (TOPIC, b" " * (64 * 1024 + 1), "too_large"),
        ("other/v1/gw-001/vit-001/vitals", body(heart_rate=70), "bad_topic"),
        ("eldercare/v1/gw-001/vitals", body(heart_rate=70), "bad_topic"),
        ("eldercare/v1/gw-001/vit-001/warp", body(), "unknown_event"),
        ("eldercare/v1/g/vit-001/vitals", body(heart_rate=70), "bad_topic"),
        ("eldercare/v1/gw-001/status", b"maybe", "invalid_field"),
        ("eldercare/v1/gw-001/batch", b"{}", "not_an_object"),
    ],
)
def test_refusals_name_a_reason(topic, payload, reason):
    with pytest.raises(Refused) as info:
        parse(topic, payload)
    assert info.value.reason == reason


def test_status_and_batch():
    assert parse("eldercare/v1/gw-001/status", b"offline") == Status("gw-001", online=False)
    items = [
        {
            "device_id": "vit-001",
            "event": "vitals",
            "msg_id": f"b{i}",
            "ts": "2026-11-26T00:00:00Z",
            "heart_rate": 60 + i,
        }
        for i in range(3)
    ]
    events = parse("eldercare/v1/gw-001/batch", orjson.dumps(items))
    assert [e.msg_id for e in events] == ["b0", "b1", "b2"]
    assert all(e.gateway_id == "gw-001" for e in events)


def test_split_topic():
    assert split_topic(TOPIC) == ("gw-001", "vit-001", "vitals")
    assert split_topic("eldercare/v1/gw-001/batch") == ("gw-001", None, "batch")


@given(topic=st.text(max_size=80), payload=st.binary(max_size=300))
def test_any_bytes_are_parsed_or_refused(topic, payload):
    try:
        parse(topic, payload)
    except Refused as refused:
        assert refused.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=10,
)


@given(
    event=st.sampled_from(["emergency", "fall", "vitals", "motion", "door", "bed", "heartbeat"]),
    fields=st.dictionaries(
        st.sampled_from(
            [
                "msg_id",
                "ts",
                "heart_rate",
                "spo2",
                "state",
                "room",
                "battery",
                "confidence",
                "button",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_any_json_object_is_parsed_or_refused(event, fields):
    try:
        parse(
            f"eldercare/v1/gw-001/dev-001/{event}",
            orjson.dumps(fields, option=orjson.OPT_NON_STR_KEYS),
        )
    except Refused as refused:
        assert refused.reason
    except orjson.JSONEncodeError:
        pass  # hypothesis made a value orjson cannot encode (e.g. huge int): not our input


def test_urgent_detection_sees_emergencies_inside_batches():
    from services.telemetry.ingest.worker import is_urgent

    assert is_urgent("eldercare/v1/gw-1/btn-1/emergency", b"{}")
    assert is_urgent("eldercare/v1/gw-1/fall-1/fall", b"{}")
    assert is_urgent("eldercare/v1/gw-1/status", b"offline")
    assert is_urgent("eldercare/v1/gw-1/batch", b'[{"event":"emergency"}]')
    assert not is_urgent("eldercare/v1/gw-1/batch", b'[{"event":"vitals"}]')
    assert not is_urgent("eldercare/v1/gw-1/vit-1/vitals", b'{"note":"fall"}')


def test_bad_batch_items_are_refused_one_by_one():
    from services.telemetry.contract import RefusedItem

    items = [
        {"event": "vitals"},
        {
            "device_id": "vit-001",
            "event": "vitals",
            "msg_id": "ok",
            "ts": "2026-11-26T00:00:00Z",
            "heart_rate": 70,
        },
    ]
    first, second = parse("eldercare/v1/gw-001/batch", orjson.dumps(items))
    assert isinstance(first, RefusedItem) and first.refused.reason == "invalid_field"
    assert isinstance(second, Event) and second.msg_id == "ok"


# --- ts: RFC 3339 with an offset, never a number, never far ahead -----------------------
ARRIVAL = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


def at(ts, topic: str = TOPIC, **fields):
    payload = orjson.dumps({"msg_id": "m-1", "ts": ts, **fields})
    return parse(topic, payload, received_at=ARRIVAL)


@pytest.mark.parametrize(
    "ts",
    [
        1764115200,  # epoch seconds: pydantic would coerce it
        1764115200.5,
        1764115200000,  # epoch milliseconds
        "1764115200",
        True,
        None,
        "2026-11-26T08:00:00",  # no offset
        "2026-11-26",
        "20261126T080000+0800",  # ISO 8601 basic format: not RFC 3339
        "2026-11-26T08:00:00+08",
        "2026-02-30T08:00:00Z",
        "2026-11-26T08:00:60Z",
        "2026-11-26T08:00:00+24:00",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after 9999 in UTC
        "２０２６-11-26T08:00:00Z",  # full-width digits
        ["2026-11-26T08:00:00Z"],
    ],
)
def test_ts_must_be_an_rfc3339_string_with_an_offset(ts):
    with pytest.raises(Refused) as info:
        at(ts, heart_rate=70)
    assert info.value.reason == "invalid_field"
    assert info.value.detail.startswith("ts:")


@pytest.mark.parametrize(
    ("ts", "utc"),
    [
        ("2026-11-26T08:00:00+08:00", datetime(2026, 11, 26, 0, 0, tzinfo=UTC)),
        ("2026-11-26T00:00:00Z", datetime(2026, 11, 26, 0, 0, tzinfo=UTC)),
        ("2026-11-25t23:59:59.5z", datetime(2026, 11, 25, 23, 59, 59, 500000, tzinfo=UTC)),
        ("2026-11-26 00:00:00.123456789+00:00", datetime(2026, 11, 26, 0, 0, 0, 123456, UTC)),
    ],
)
def test_rfc3339_forms_are_accepted_in_utc(ts, utc):
    [event] = at(ts, heart_rate=70)
    assert event.device_ts == utc and event.flags == ()


def test_a_ts_beyond_the_configured_bound_is_refused_as_in_future():
    from services.telemetry.contract import device_events

    bound = device_events().ts_max_ahead
    assert bound == timedelta(hours=24)  # device_events.yaml
    ok = (ARRIVAL + bound).isoformat()
    [event] = at(ok, heart_rate=70)
    assert event.flags == ()
    for ts in ((ARRIVAL + bound + timedelta(seconds=1)).isoformat(), "2031-01-01T00:00:00Z"):
        with pytest.raises(Refused) as info:
            at(ts, heart_rate=70)
        assert info.value.reason == "ts_in_future"


def test_an_emergency_from_the_future_is_kept_and_flagged_not_refused():
    for event, topic in (
        ("emergency", "eldercare/v1/gw-001/btn-001/emergency"),
        ("fall", "eldercare/v1/gw-001/fall-001/fall"),
    ):
        [parsed] = at("2031-01-01T00:00:00Z", topic)
        assert parsed.event == event and parsed.flags == ("ts_in_future",)


@pytest.mark.parametrize(
    ("topic", "fields"),
    [
        (TOPIC, {"msg_id": "a\x00b", "heart_rate": 70}),
        ("eldercare/v1/gw-001/pir-001/motion", {"room": "kit\x00chen", "state": "active"}),
        ("eldercare/v1/gw-001/btn-001/emergency", {"button": "\x00"}),
    ],
)
def test_nul_characters_are_refused_as_invalid_input(topic, fields):
    payload = orjson.dumps({"msg_id": "m-1", "ts": "2026-11-26T00:00:00Z", **fields})
    with pytest.raises(Refused) as info:
        parse(topic, payload, received_at=ARRIVAL)
    assert info.value.reason == "invalid_field"


# --- which device kind may send which event: data --------------------------------------
def test_every_registry_device_kind_has_its_events():
    from typing import get_args

    from services.registry.devices.schemas import DeviceKind
    from services.telemetry.contract import EVENTS, device_events

    table = device_events().kinds
    assert set(table) == set(get_args(DeviceKind))
    assert all(events and events <= set(EVENTS) for events in table.values())


@pytest.mark.parametrize(
    ("kind", "event", "ok"),
    [
        ("vital_monitor", "vitals", True),
        ("bed_sensor", "vitals", True),
        ("door_sensor", "vitals", False),
        ("motion_sensor", "vitals", False),
        ("emergency_button", "emergency", True),
        ("door_sensor", "emergency", False),
        ("fall_sensor", "fall", True),
        ("gateway", "heartbeat", True),
        ("gateway", "vitals", False),
        ("smoke_alarm", "emergency", True),
        ("teapot", "heartbeat", False),
    ],
)
def test_allowed_events(kind, event, ok):
    from services.telemetry.contract import allowed

    assert allowed(kind, event) is ok


def test_the_table_refuses_unknown_events(tmp_path):
    from services.telemetry.contract import load_device_events

    path = tmp_path / "device_events.yaml"
    path.write_text("kinds: {door_sensor: [door, teleport]}\nts_max_ahead_s: 60\n")
    with pytest.raises(ValueError, match="teleport"):
        load_device_events(path)


def test_urgent_detection_sees_through_json_escapes():
    from services.telemetry.contract import carries_urgent

    escaped = b'[{"device_id":"f-1","event":"\\u0066all","msg_id":"x","ts":"2026-11-26T00:00:00Z"}]'
    assert carries_urgent("eldercare/v1/gw-1/batch", escaped)
    assert not carries_urgent("eldercare/v1/gw-1/batch", b'[{"event":"vit\\u0061ls"}]')
    assert not carries_urgent("eldercare/v1/gw-1/status", b"offline")


# --- the parser, fuzzed: never anything but Refused, whatever the bytes ------------------
# Mostly valid ids, values and timestamps, so that the fuzzer gets past the first refusal
# and reaches what lies behind it (timestamps at the calendar's edges, say).
ids = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=3, max_size=64),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=70),
)
timestamps = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.builds(
        lambda d, offset: d.isoformat() + offset,
        st.datetimes(),
        st.sampled_from(["Z", "z", "+00:00", "+01:00", "-01:00", "+14:00", "-23:59", "+24:00"]),
    ),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]),
    st.text(max_size=40),
    st.none(),
)
json_any = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=10,
)


def plausible(strategy):
    return st.one_of(strategy, json_any)


fields = st.fixed_dictionaries(
    {"msg_id": plausible(st.text(max_size=70)), "ts": timestamps},
    optional={
        "device_id": plausible(ids),
        "event": st.sampled_from(["emergency", "fall", "vitals", "motion", "bed", "x"]),
        "heart_rate": plausible(st.integers(0, 300)),
        "spo2": plausible(st.floats(40, 110)),
        "temp_c": plausible(st.floats(allow_nan=False)),
        "state": st.sampled_from(["in", "out", "open", "active", "idle", ""]),
        "room": plausible(st.text(max_size=40)),
        "button": plausible(st.text(max_size=40)),
        "battery": plausible(st.integers(-10, 110)),
        "rssi": plausible(st.integers(-200, 10)),
        "confidence": plausible(st.floats(-1, 2)),
    },
)
EVENT_NAMES = ["emergency", "fall", "vitals", "motion", "door", "bed", "heartbeat", "x"]


@st.composite
def messages(draw) -> tuple[str, bytes]:
    """(topic, payload): mostly a topic and a payload that belong together, sometimes noise."""
    shape = draw(st.sampled_from(["device", "device", "batch", "status", "noise"]))
    gateway, device = draw(ids), draw(ids)
    if shape == "device":
        event = draw(st.sampled_from(EVENT_NAMES))
        body = draw(st.one_of(fields, json_any))
        return f"eldercare/v1/{gateway}/{device}/{event}", orjson.dumps(body)
    if shape == "batch":
        items = draw(st.lists(fields, min_size=1, max_size=5))
        return f"eldercare/v1/{gateway}/batch", orjson.dumps(items)
    if shape == "status":
        payload = draw(st.sampled_from([b"online", b"offline", b" Online\n", b"", b"maybe"]))
        return f"eldercare/v1/{gateway}/status", payload
    return draw(st.text(max_size=80)), draw(st.binary(max_size=400))


@settings(max_examples=500)
@given(message=messages(), received_at=st.datetimes(timezones=st.just(UTC)))
def test_the_parser_never_raises_anything_but_refused(message, received_at):
    topic, payload = message
    try:
        result = parse(topic, payload, received_at=received_at)
    except Refused as refused:
        assert refused.reason and len(refused.reason) <= 64
        return
    if isinstance(result, Status):
        return
    for item in result:
        if isinstance(item, Event):
            assert item.device_ts.utcoffset() == timedelta(0)
            assert item.device_ts - received_at <= timedelta(hours=24) or item.flags
            assert all("\x00" not in v for v in item.data.values() if isinstance(v, str))
            assert "\x00" not in item.msg_id
