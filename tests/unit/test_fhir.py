"""Vitals → HL7 FHIR R4 Observations: LOINC codes, UCUM units, BP panel, stable ids.

``fhir.resources`` is not a dependency, so the R4 rules that matter are checked structurally
(required elements, cardinalities and the vital-signs profile invariants)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.telemetry.events import fhir

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


def obs(**vitals):
    return fhir.observations(ELDER, "vm-0001", TS, vitals, event_id="evt-1")


def by_code(resources):
    return {r["code"]["coding"][0]["code"]: r for r in resources}


def assert_r4_vital_sign(resource: dict) -> None:
    """Structural checks of R4 Observation + the vitalsigns profile (no library)."""
    assert resource["resourceType"] == "Observation"
    assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", resource["id"])
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
    assert resource["id"] == f"evt-1-{loinc}"
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
    utc = fhir.observations(ELDER, "vm-0001", TS.astimezone(UTC), {"spo2": 99}, event_id="e")
    assert utc[0]["effectiveDateTime"] == "2024-05-01T00:30:15+00:00"
    with pytest.raises(ValueError, match="timezone"):
        fhir.observations(ELDER, "vm-0001", TS.replace(tzinfo=None), {"spo2": 99}, event_id="e")


def test_ids_are_deterministic():
    first = fhir.observations(ELDER, "vm-0001", TS, ALL, event_id="evt-42")
    again = fhir.observations(ELDER, "vm-0001", TS, dict(reversed(ALL.items())), event_id="evt-42")
    assert first == again
    assert [r["id"] for r in first] == [
        "evt-42-8867-4",
        "evt-42-9279-1",
        "evt-42-2708-6",
        "evt-42-85354-9",
        "evt-42-8310-5",
    ]
    other = fhir.observations(ELDER, "vm-0001", TS, ALL, event_id="evt-43")
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


def test_event_id_must_form_a_fhir_id():
    with pytest.raises(ValueError, match="event_id"):
        fhir.observations(ELDER, "vm-0001", TS, {"spo2": 97}, event_id="dev:msg/1")
    (ok,) = fhir.observations(ELDER, "vm-0001", TS, {"spo2": 97}, event_id=str(uuid.uuid4()))
    assert_r4_vital_sign(ok)


def test_a_device_id_that_is_not_a_fhir_id_is_referenced_by_identifier():
    (resource,) = fhir.observations(ELDER, "vm_0001:a", TS, {"spo2": 97}, event_id="e1")
    assert resource["device"] == {
        "identifier": {"system": fhir.DEVICE_ID_SYSTEM, "value": "vm_0001:a"}
    }


def test_bundle_is_a_searchset_with_total_and_entries():
    resources = obs(**ALL)
    bundle = fhir.bundle(resources)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 5 == len(bundle["entry"])
    assert [e["resource"] for e in bundle["entry"]] == resources
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert all(re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", u) for u in urls)
    assert len(set(urls)) == 5
    assert urls == [e["fullUrl"] for e in fhir.bundle(obs(**ALL))["entry"]]  # deterministic
    assert all(e["search"] == {"mode": "match"} for e in bundle["entry"])
    based = fhir.bundle(resources, base_url="https://fhir.example.org/r4/")
    assert based["entry"][0]["fullUrl"] == "https://fhir.example.org/r4/Observation/evt-1-8867-4"
    empty = fhir.bundle([])
    assert empty["total"] == 0 and empty["entry"] == []
    json.dumps(bundle, allow_nan=False)
