"""Vitals → HL7 FHIR R4 Observations: LOINC codes, UCUM units, BP panel, stable ids that are
valid whatever the device and message ids, Bundles paged by Observations.

Every Bundle is validated by ``fhir.resources`` (R4B models, a dev dependency); the R4 rules it
does not check (the id's 64-character bound, the vital-signs profile invariants) are checked
structurally."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given
from hypothesis import strategies as st

from services.telemetry.events import fhir
from shared.ids import DEVICE_ID_PATTERN

ELDER = uuid.UUID("0b7f6a2e-4a0e-4b8e-9a0e-1d2c3b4a5f60")
SHANGHAI = timezone(timedelta(hours=8))
TS = datetime(2024, 5, 1, 8, 30, 15, tzinfo=SHANGHAI)
ALL = {
    "heart_rate": 72,
    "resp_rate": 16,
    "spo2": 97,
    "systolic": 128,
    "diastolic": 82,
    "temp_c": 36.6,
}
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# R4 dateTime with a time: an offset (or Z) is required.
DATETIME_WITH_OFFSET = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def obs(**vitals):
    return fhir.observations(ELDER, "vm-0001", TS, vitals, msg_id="evt-1")


def assert_valid_r4(bundle: dict) -> None:
    """What an outside validator would say: the R4(B) models accept it, and every id is an
    R4 id (``fhir.resources`` checks the characters, not the 64-character bound)."""
    Bundle.model_validate(bundle)
    for entry in bundle.get("entry", []):
        assert FHIR_ID.fullmatch(entry["resource"]["id"]), entry["resource"]["id"]
    urls = [e["fullUrl"] for e in bundle.get("entry", [])]
    assert len(urls) == len(set(urls)), "bdl-7: fullUrl unique within a Bundle"


def by_code(resources):
    return {r["code"]["coding"][0]["code"]: r for r in resources}


def assert_r4_vital_sign(resource: dict) -> None:
    """Structural checks of R4 Observation + the vitalsigns profile (no library)."""
    assert resource["resourceType"] == "Observation"
    assert FHIR_ID.fullmatch(resource["id"])
    assert resource["status"] in {"registered", "preliminary", "final", "amended"}
    assert resource["status"] == "final"
    (category,) = resource["category"]
    assert {"system": CATEGORY, "code": "vital-signs", "display": "Vital Signs"} in category[
        "coding"
    ]
    (coding,) = resource["code"]["coding"]
    assert coding["system"] == LOINC and re.fullmatch(r"\d{4,5}-\d", coding["code"])
    assert resource["subject"] == {"reference": f"Patient/{ELDER}"}
    assert DATETIME_WITH_OFFSET.fullmatch(resource["effectiveDateTime"])
    assert "http://hl7.org/fhir/StructureDefinition/vitalsigns" in resource["meta"]["profile"]
    # vs-2: no component/hasMember → value[x] or dataAbsentReason
    if "component" not in resource:
        assert "valueQuantity" in resource or "dataAbsentReason" in resource
    else:
        assert "valueQuantity" not in resource  # a panel has no value of its own
        for component in resource["component"]:
            (ccoding,) = component["code"]["coding"]
            assert ccoding["system"] == LOINC
            # vs-3: each component has a value or a reason for its absence
            assert ("valueQuantity" in component) != ("dataAbsentReason" in component)
            if "valueQuantity" in component:
                assert_quantity(component["valueQuantity"])
    if "valueQuantity" in resource:
        assert_quantity(resource["valueQuantity"])
    json.dumps(resource, allow_nan=False)  # serialisable as strict JSON


def assert_quantity(quantity: dict) -> None:
    assert set(quantity) == {"value", "unit", "system", "code"}
    assert quantity["system"] == UCUM
    assert isinstance(quantity["value"], int | float) and not isinstance(quantity["value"], bool)


@pytest.mark.parametrize(
    ("key", "value", "loinc", "ucum", "profile"),
    [
        ("heart_rate", 72, "8867-4", "/min", "heartrate"),
        ("resp_rate", 16, "9279-1", "/min", "resprate"),
        ("spo2", 97, "2708-6", "%", "oxygensat"),
        ("temp_c", 36.6, "8310-5", "Cel", "bodytemp"),
    ],
)
def test_each_vital_has_its_loinc_code_and_ucum_unit(key, value, loinc, ucum, profile):
    (resource,) = obs(**{key: value})
    assert_r4_vital_sign(resource)
    assert resource["code"]["coding"][0]["code"] == loinc
    assert resource["valueQuantity"]["value"] == value
    assert resource["valueQuantity"]["code"] == ucum
    assert resource["valueQuantity"]["system"] == UCUM
    assert resource["meta"]["profile"][-1] == f"http://hl7.org/fhir/StructureDefinition/{profile}"
    assert resource["id"] == f"vm-0001.evt-1.{loinc}"
    assert resource["device"] == {"reference": "Device/vm-0001"}


def test_a_full_event_gives_five_observations_in_contract_order():
    resources = obs(**ALL)
    assert [r["code"]["coding"][0]["code"] for r in resources] == [
        "8867-4",
        "9279-1",
        "2708-6",
        "85354-9",
        "8310-5",
    ]
    for resource in resources:
        assert_r4_vital_sign(resource)
    assert len({r["id"] for r in resources}) == 5


def test_blood_pressure_is_one_panel_with_two_components():
    resources = obs(systolic=128, diastolic=82)
    (panel,) = resources
    assert_r4_vital_sign(panel)
    assert panel["code"]["coding"][0]["code"] == "85354-9"
    assert panel["meta"]["profile"][-1].endswith("/bp")
    systolic, diastolic = panel["component"]
    assert systolic["code"]["coding"][0]["code"] == "8480-6"
    assert diastolic["code"]["coding"][0]["code"] == "8462-4"
    assert systolic["valueQuantity"] == {
        "value": 128,
        "unit": "mmHg",
        "system": UCUM,
        "code": "mm[Hg]",
    }
    assert diastolic["valueQuantity"]["value"] == 82
    assert diastolic["valueQuantity"]["code"] == "mm[Hg]"


@pytest.mark.parametrize(
    ("present", "absent"), [("systolic", "diastolic"), ("diastolic", "systolic")]
)
def test_half_a_blood_pressure_is_still_the_panel(present, absent):
    (panel,) = obs(**{present: 100})
    assert_r4_vital_sign(panel)
    assert panel["code"]["coding"][0]["code"] == "85354-9"
    components = {c["code"]["coding"][0]["code"]: c for c in panel["component"]}
    codes = {"systolic": "8480-6", "diastolic": "8462-4"}
    assert components[codes[present]]["valueQuantity"]["value"] == 100
    # the R4 bp profile wants both components: the missing one says why it is missing
    assert "valueQuantity" not in components[codes[absent]]
    assert components[codes[absent]]["dataAbsentReason"]["coding"][0]["code"] == "unknown"


def test_effective_date_time_keeps_the_offset():
    (resource,) = obs(heart_rate=60)
    assert resource["effectiveDateTime"] == "2024-05-01T08:30:15+08:00"
    utc = fhir.observations(ELDER, "vm-0001", TS.astimezone(UTC), {"spo2": 99}, msg_id="e")
    assert utc[0]["effectiveDateTime"] == "2024-05-01T00:30:15+00:00"
    with pytest.raises(ValueError, match="timezone"):
        fhir.observations(ELDER, "vm-0001", TS.replace(tzinfo=None), {"spo2": 99}, msg_id="e")


def test_ids_are_deterministic():
    first = fhir.observations(ELDER, "vm-0001", TS, ALL, msg_id="evt-42")
    again = fhir.observations(ELDER, "vm-0001", TS, dict(reversed(ALL.items())), msg_id="evt-42")
    assert first == again
    assert [r["id"] for r in first] == [
        "vm-0001.evt-42.8867-4",
        "vm-0001.evt-42.9279-1",
        "vm-0001.evt-42.2708-6",
        "vm-0001.evt-42.85354-9",
        "vm-0001.evt-42.8310-5",
    ]
    other = fhir.observations(ELDER, "vm-0001", TS, ALL, msg_id="evt-43")
    assert not {r["id"] for r in first} & {r["id"] for r in other}


def test_unknown_keys_and_nulls_are_ignored_empty_gives_nothing():
    resources = obs(heart_rate=70, battery=80, room="kitchen", spo2=None)
    assert [r["code"]["coding"][0]["code"] for r in resources] == ["8867-4"]
    assert obs() == []
    assert obs(battery=3, rssi=-60) == []


@pytest.mark.parametrize("bad", [True, "72", float("nan"), float("inf"), [72]])
def test_values_that_are_not_finite_numbers_are_refused(bad):
    with pytest.raises(ValueError, match="heart_rate"):
        obs(heart_rate=bad)


# What the registry and the MQTT contract allow and an R4 id does not.
HOSTILE = [
    ("vm_0001", "m1"),  # `_` in the device id
    ("vm-0001", "消息-1"),  # non-ASCII message id
    ("vm-0001", "x" * 64),  # 64-character message id
    ("d" * 64, "1"),  # 64-character device id
    ("d" * 64, "m" * 64),
    ("vm.0001", "1"),  # a dot in the device id would make the natural id ambiguous
    ("vm-0001", "a/b c:d"),
    ("vm-0001", "."),
]


@pytest.mark.parametrize(("device_id", "msg_id"), HOSTILE)
def test_any_device_and_message_id_export_to_valid_r4(device_id, msg_id):
    resources = fhir.observations(ELDER, device_id, TS, ALL, msg_id=msg_id)
    assert len(resources) == 5
    for resource in resources:
        assert_r4_vital_sign(resource)
    assert_valid_r4(fhir.bundle(resources))
    assert len({r["id"] for r in resources}) == 5
    again = fhir.observations(ELDER, device_id, TS, ALL, msg_id=msg_id)
    assert [r["id"] for r in again] == [r["id"] for r in resources]  # deterministic


def test_natural_ids_are_kept_when_valid_and_never_collide_with_hashed_ones():
    assert fhir.observation_id("vm-0001", "17", "8867-4") == "vm-0001.17.8867-4"
    hashed = fhir.observation_id("vm_0001", "17", "8867-4")
    assert re.fullmatch(r"[0-9a-f]{40}-8867-4", hashed)
    # '-' may be in both parts, so the old `{device}-{msg}` form named two readings alike
    assert fhir.observation_id("abc-d", "1", "8867-4") != fhir.observation_id(
        "abc", "d-1", "8867-4"
    )
    # a dot in the device id: the natural form would be ambiguous, so it is hashed
    assert fhir.observation_id("abc.d", "1", "x") != fhir.observation_id("abc", "d.1", "x")
    assert "." not in fhir.observation_id("abc.d", "1", "8867-4")


@given(
    st.lists(
        st.tuples(
            st.from_regex(DEVICE_ID_PATTERN, fullmatch=True),
            st.text(min_size=1, max_size=64),
        ),
        min_size=2,
        max_size=2,
        unique=True,
    )
)
def test_ids_are_valid_and_distinct_for_distinct_readings(pairs):
    (d1, m1), (d2, m2) = pairs
    a = fhir.observation_id(d1, m1, "85354-9")
    b = fhir.observation_id(d2, m2, "85354-9")
    assert FHIR_ID.fullmatch(a) and FHIR_ID.fullmatch(b)
    assert a != b


def test_a_device_id_that_is_not_a_fhir_id_is_referenced_by_identifier():
    (resource,) = fhir.observations(ELDER, "vm_0001:a", TS, {"spo2": 97}, msg_id="e1")
    assert resource["device"] == {
        "identifier": {"system": fhir.DEVICE_ID_SYSTEM, "value": "vm_0001:a"}
    }


def test_bundle_is_a_searchset_page_with_links_and_no_false_total():
    resources = obs(**ALL)
    bundle = fhir.bundle(resources)
    assert_valid_r4(bundle)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    # R4: total is the number of matches of the whole search; not computed → absent, never
    # the size of this page
    assert "total" not in bundle and "link" not in bundle
    assert [e["resource"] for e in bundle["entry"]] == resources
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert all(re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", u) for u in urls)
    assert urls == [e["fullUrl"] for e in fhir.bundle(obs(**ALL))["entry"]]  # deterministic
    assert all(e["search"] == {"mode": "match"} for e in bundle["entry"])
    based = fhir.bundle(resources, base_url="https://fhir.example.org/r4/")
    assert based["entry"][0]["fullUrl"] == (
        "https://fhir.example.org/r4/Observation/vm-0001.evt-1.8867-4"
    )
    paged = fhir.bundle(
        resources, self_url="https://t/v?limit=5", next_url="https://t/v?cursor=c", total=12
    )
    assert_valid_r4(paged)
    assert paged["total"] == 12
    assert paged["link"] == [
        {"relation": "self", "url": "https://t/v?limit=5"},
        {"relation": "next", "url": "https://t/v?cursor=c"},
    ]
    empty = fhir.bundle([])
    assert_valid_r4(empty)
    assert "entry" not in empty  # FHIR JSON has no empty arrays
    json.dumps(bundle, allow_nan=False)


def test_skipped_readings_are_reported_as_an_operation_outcome():
    bundle = fhir.bundle(obs(spo2=97), skipped=2)
    assert_valid_r4(bundle)
    *matches, outcome = bundle["entry"]
    assert [m["search"]["mode"] for m in matches] == ["match"]
    assert outcome["search"] == {"mode": "outcome"}
    assert outcome["resource"]["resourceType"] == "OperationOutcome"
    (issue,) = outcome["resource"]["issue"]
    assert issue["severity"] == "warning" and "2 reading" in issue["diagnostics"]


class Row:
    def __init__(self, device_id: str, msg_id: str, data: object, ts: datetime = TS) -> None:
        self.device_id, self.msg_id, self.data, self.device_ts = device_id, msg_id, data, ts


def codes(resources) -> list[str]:
    return [r["code"]["coding"][0]["code"] for r in resources]


def test_export_counts_observations_and_says_where_the_next_page_starts():
    rows = [Row("vm-1", "a", ALL), Row("vm-1", "b", {"spo2": 97, "heart_rate": 60})]
    page = fhir.export(rows, ELDER, limit=3)
    assert codes(page.observations) == ["8867-4", "9279-1", "2708-6"]
    assert page.resume == (0, 3) and page.skipped == 0
    # the next page starts inside the first reading, after the three already sent
    rest = fhir.export(rows, ELDER, limit=3, first_skip=3)
    assert codes(rest.observations) == ["85354-9", "8310-5", "8867-4"]
    assert rest.resume == (1, 1)
    last = fhir.export(rows[1:], ELDER, limit=3, first_skip=1)
    assert codes(last.observations) == ["2708-6"] and last.resume is None
    everything = fhir.export(rows, ELDER, limit=100)
    assert len(everything.observations) == 7 and everything.resume is None


def test_one_bad_reading_is_skipped_and_counted_never_fatal():
    rows = [
        Row("vm-1", "a", {"heart_rate": 70}),
        Row("vm-1", "b", {"heart_rate": "fast"}),  # not a number (a hand-edited row)
        Row("vm-1", "c", ["not", "an", "object"]),
        Row("vm-1", "d", {"spo2": 97}, ts=TS.replace(tzinfo=None)),  # naive time
        Row("vm_1", "消息", {"spo2": 96}),  # hostile ids are fine
    ]
    page = fhir.export(rows, ELDER, limit=10)
    assert page.skipped == 3
    assert codes(page.observations) == ["8867-4", "2708-6"]
    assert_valid_r4(fhir.bundle(page.observations, skipped=page.skipped))
    # a resumed reading that cannot be exported was counted by the page that met it first
    assert fhir.export(rows[1:2], ELDER, limit=10, first_skip=1).skipped == 0


def test_a_reading_stored_twice_is_exported_once():
    rows = [Row("vm-1", "a", {"spo2": 97}), Row("vm-1", "a", {"spo2": 97})]
    page = fhir.export(rows, ELDER, limit=10)
    assert len(page.observations) == 1
    assert_valid_r4(fhir.bundle(page.observations))
    # across batches too: the last key of the previous batch is carried over
    assert fhir.export(rows[1:], ELDER, limit=10, after_key=("vm-1", "a")).observations == []
