"""Vital signs as HL7 FHIR R4 ``Observation`` resources (LOINC codes, UCUM units).

One telemetry ``vitals`` event (``{heart_rate, resp_rate, spo2, systolic, diastolic, temp_c}``,
any subset) becomes one Observation per vital sign, shaped after the R4 vital-signs profiles
(``http://hl7.org/fhir/StructureDefinition/vitalsigns`` and the per-sign profiles):

================  ===========  ==========  ============
vital             LOINC        UCUM code   profile
================  ===========  ==========  ============
heart_rate        8867-4       ``/min``    heartrate
resp_rate         9279-1       ``/min``    resprate
spo2              2708-6       ``%``       oxygensat
temp_c            8310-5       ``Cel``     bodytemp
systolic +        85354-9      (panel)     bp
diastolic         (8480-6, 8462-4 components, ``mm[Hg]``)
================  ===========  ==========  ============

Blood pressure is always one panel. When only one of systolic/diastolic was measured, the
panel carries that component's value and the other component with a ``dataAbsentReason``
(``unknown``): the R4 ``bp`` profile requires both components, each with a value or a
reason for its absence.

Everything here is a pure function of its arguments: the same event always exports to the
same resources (ids are ``{event_id}-{loinc}``), so a re-export updates instead of duplicating.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
PROFILE_BASE = "http://hl7.org/fhir/StructureDefinition/"
VITALSIGNS_PROFILE = PROFILE_BASE + "vitalsigns"
# Devices whose id is not a valid FHIR id are referenced logically, by this identifier system.
DEVICE_ID_SYSTEM = "urn:eldercare:device-id"
# fullUrl of bundle entries without a base URL: urn:uuid:uuid5(this namespace, "Observation/id").
FULLURL_NAMESPACE = uuid.UUID("5b0e8f0c-0c4e-5d8a-9a55-6e1d2c7a4f10")

# R4 `id` datatype.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

BP_PANEL = "85354-9"


@dataclass(frozen=True)
class Vital:
    key: str
    loinc: str
    display: str
    unit: str
    ucum: str
    profile: str


VITALS: tuple[Vital, ...] = (
    Vital("heart_rate", "8867-4", "Heart rate", "/min", "/min", "heartrate"),
    Vital("resp_rate", "9279-1", "Respiratory rate", "/min", "/min", "resprate"),
    Vital("spo2", "2708-6", "Oxygen saturation in Arterial blood", "%", "%", "oxygensat"),
    Vital("temp_c", "8310-5", "Body temperature", "Cel", "Cel", "bodytemp"),
)
BP_COMPONENTS: tuple[Vital, ...] = (
    Vital("systolic", "8480-6", "Systolic blood pressure", "mmHg", "mm[Hg]", "bp"),
    Vital("diastolic", "8462-4", "Diastolic blood pressure", "mmHg", "mm[Hg]", "bp"),
)
BP_PANEL_DISPLAY = "Blood pressure panel with all children optional"


def _codeable(loinc: str, display: str) -> dict:
    return {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display}


def _quantity(vital: Vital, value: int | float) -> dict:
    return {"value": value, "unit": vital.unit, "system": UCUM, "code": vital.ucum}


def _number(key: str, value: object) -> int | float | None:
    """The measured value, ``None`` when absent; refuses what is not a finite number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"vital {key!r} is not a number: {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"vital {key!r} is not finite: {value!r}")
    return value


def _device(device_id: str) -> dict:
    if FHIR_ID.fullmatch(device_id):
        return {"reference": f"Device/{device_id}"}
    return {"identifier": {"system": DEVICE_ID_SYSTEM, "value": device_id}}


def observations(
    elder_id: uuid.UUID,
    device_id: str,
    ts: datetime,
    vitals: Mapping[str, float | int],
    *,
    event_id: str,
) -> list[dict]:
    """One R4 Observation per vital sign in ``vitals`` (blood pressure: one panel).

    Unknown keys and ``None`` values are ignored; an empty event gives ``[]``. ``ts`` must be
    timezone-aware (FHIR requires an offset on a dateTime with a time); it is exported with
    the offset it carries. Raises ``ValueError`` for a naive ``ts``, a value that is not a
    finite number, or an ``event_id`` that cannot form a FHIR id.
    """
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("ts must be timezone-aware")
    measured = {}
    for vital in (*VITALS, *BP_COMPONENTS):
        value = _number(vital.key, vitals.get(vital.key))
        if value is not None:
            measured[vital.key] = value

    def resource(loinc: str, display: str, profile: str) -> dict:
        obs_id = f"{event_id}-{loinc}"
        if not FHIR_ID.fullmatch(obs_id):
            raise ValueError(f"event_id {event_id!r} does not form a FHIR id ({obs_id!r})")
        return {
            "resourceType": "Observation",
            "id": obs_id,
            "meta": {"profile": [VITALSIGNS_PROFILE, PROFILE_BASE + profile]},
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": OBSERVATION_CATEGORY,
                            "code": "vital-signs",
                            "display": "Vital Signs",
                        }
                    ],
                    "text": "Vital Signs",
                }
            ],
            "code": _codeable(loinc, display),
            "subject": {"reference": f"Patient/{elder_id}"},
            "effectiveDateTime": ts.isoformat(),
            "device": _device(device_id),
        }

    def blood_pressure() -> dict:
        panel = resource(BP_PANEL, BP_PANEL_DISPLAY, "bp")
        components = []
        for vital in BP_COMPONENTS:
            component: dict = {"code": _codeable(vital.loinc, vital.display)}
            if vital.key in measured:
                component["valueQuantity"] = _quantity(vital, measured[vital.key])
            else:
                component["dataAbsentReason"] = {
                    "coding": [{"system": DATA_ABSENT_REASON, "code": "unknown"}],
                    "text": "not measured",
                }
            components.append(component)
        panel["component"] = components
        return panel

    result = []
    for vital in VITALS:
        if vital.key == "temp_c" and any(c.key in measured for c in BP_COMPONENTS):
            result.append(blood_pressure())  # the contract's order: ..., BP, temperature
        if vital.key in measured:
            obs = resource(vital.loinc, vital.display, vital.profile)
            obs["valueQuantity"] = _quantity(vital, measured[vital.key])
            result.append(obs)
    return result


def _full_url(resource: dict, base_url: str | None) -> str:
    path = f"{resource['resourceType']}/{resource['id']}"
    if base_url:
        return f"{base_url.rstrip('/')}/{path}"
    return f"urn:uuid:{uuid.uuid5(FULLURL_NAMESPACE, path)}"


def bundle(observations: list[dict], *, base_url: str | None = None) -> dict:
    """A ``searchset`` Bundle of ``observations`` with ``total``.

    ``fullUrl`` is ``{base_url}/Observation/{id}`` when the server's FHIR base is given, else
    a ``urn:uuid:`` derived deterministically from the resource's id (a fullUrl must be
    absolute, and ``Observation/{id}`` alone is relative).
    """
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(observations),
        "entry": [
            {
                "fullUrl": _full_url(obs, base_url),
                "resource": obs,
                "search": {"mode": "match"},
            }
            for obs in observations
        ],
    }
