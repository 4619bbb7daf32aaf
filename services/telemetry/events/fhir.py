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

Everything here is a pure function of its arguments: the same reading always exports to the
same resources, so a re-export updates instead of duplicating.

Ids. A reading is named by its device id and message id, and both may hold what an R4 ``id``
may not (``_``, non-ASCII, up to 64 characters each, while an id is ``[A-Za-z0-9-.]{1,64}``).
An Observation's id is ``{device_id}.{msg_id}.{loinc}`` when that is a valid id and the
device id has no ``.`` (then it reads back unambiguously: the device id ends at the first
dot, the LOINC code starts after the last); otherwise it is ``{sha256 of the pair, 40 hex}-
{loinc}``. Natural ids always contain a dot and hashed ones never do, so the two cannot
collide, and any reading exports.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

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
MEDIA_TYPE = "application/fhir+json"
HASHED_ID_HEX = 40  # 160 bits; with "-85354-9" the id stays well under 64 characters

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


def observation_id(device_id: str, msg_id: str, loinc: str) -> str:
    """The R4 id of the Observation of ``loinc`` in the reading (``device_id``, ``msg_id``):
    natural where it can be, hashed where it cannot (see the module's docstring)."""
    natural = f"{device_id}.{msg_id}.{loinc}"
    if "." not in device_id and FHIR_ID.fullmatch(natural):
        return natural
    pair = f"{len(device_id)}:{device_id}{msg_id}".encode()  # length-prefixed: unambiguous
    return f"{hashlib.sha256(pair).hexdigest()[:HASHED_ID_HEX]}-{loinc}"


def observations(
    elder_id: uuid.UUID,
    device_id: str,
    ts: datetime,
    vitals: Mapping[str, float | int],
    *,
    msg_id: str,
) -> list[dict]:
    """One R4 Observation per vital sign in ``vitals`` (blood pressure: one panel).

    Unknown keys and ``None`` values are ignored; an empty event gives ``[]``. ``ts`` must be
    timezone-aware (FHIR requires an offset on a dateTime with a time); it is exported with
    the offset it carries. Raises ``ValueError`` for a naive ``ts`` or a value that is not a
    finite number (any device and message id exports: see ``observation_id``).
    """
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("ts must be timezone-aware")
    measured = {}
    for vital in (*VITALS, *BP_COMPONENTS):
        value = _number(vital.key, vitals.get(vital.key))
        if value is not None:
            measured[vital.key] = value

    def resource(loinc: str, display: str, profile: str) -> dict:
        return {
            "resourceType": "Observation",
            "id": observation_id(device_id, msg_id, loinc),
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


def skipped_outcome(skipped: int) -> dict:
    """An OperationOutcome saying that ``skipped`` readings could not be exported: how a
    searchset tells its reader about a problem without failing the search (``search.mode``
    ``outcome``)."""
    return {
        "resourceType": "OperationOutcome",
        "id": f"skipped-{skipped}",
        "issue": [
            {
                "severity": "warning",
                "code": "processing",
                "diagnostics": f"{skipped} reading(s) in this page could not be exported "
                "as FHIR Observations and were left out",
            }
        ],
    }


def bundle(
    observations: list[dict],
    *,
    base_url: str | None = None,
    self_url: str | None = None,
    next_url: str | None = None,
    total: int | None = None,
    skipped: int = 0,
) -> dict:
    """A ``searchset`` Bundle of ``observations`` (one page of a search).

    ``total`` is the number of matches of the whole search, as R4 defines it; it is left out
    when not known (never the size of this page). ``self_url``/``next_url`` become
    ``link`` entries (``self``, ``next``). ``skipped`` readings that could not be exported
    are reported by an OperationOutcome entry (``search.mode: outcome``).

    ``fullUrl`` is ``{base_url}/Observation/{id}`` when the server's FHIR base is given, else
    a ``urn:uuid:`` derived deterministically from the resource's id (a fullUrl must be
    absolute, and ``Observation/{id}`` alone is relative).
    """
    result: dict = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        result["total"] = total
    links = [("self", self_url), ("next", next_url)]
    if any(url for _, url in links):
        result["link"] = [{"relation": rel, "url": url} for rel, url in links if url]
    entries = [
        {"fullUrl": _full_url(obs, base_url), "resource": obs, "search": {"mode": "match"}}
        for obs in observations
    ]
    if skipped:
        outcome = skipped_outcome(skipped)
        entries.append(
            {
                "fullUrl": _full_url(outcome, base_url),
                "resource": outcome,
                "search": {"mode": "outcome"},
            }
        )
    if entries:  # FHIR JSON has no empty arrays: an empty page has no `entry` at all
        result["entry"] = entries
    return result


class Reading(Protocol):
    """What a stored vitals event offers the export (``events.models.Event`` has it)."""

    device_id: str
    msg_id: str
    device_ts: datetime
    data: Mapping[str, object]


@dataclass
class ExportPage:
    observations: list[dict]
    skipped: int  # readings that could not be exported (counted, left out)
    # (index of a reading, how many of its Observations are already in this page): where the
    # next page starts; None when every reading given was used up
    resume: tuple[int, int] | None
    last_key: tuple[str, str] | None  # (device_id, msg_id) of the last reading looked at


def export(
    readings: Sequence[Reading],
    elder_id: uuid.UUID,
    *,
    limit: int,
    first_skip: int = 0,
    after_key: tuple[str, str] | None = None,
) -> ExportPage:
    """Up to ``limit`` Observations from ``readings`` (in list order), skipping the first
    ``first_skip`` Observations of the first reading (an earlier page carried them).

    A reading that cannot be exported (a stored value that is not a finite number, a naive
    time) is counted in ``skipped`` and left out: one bad reading never fails an export.
    A reading stored twice (same device and message id, next to each other in the order)
    is exported once."""
    out: list[dict] = []
    skipped = 0
    previous = after_key
    for i, reading in enumerate(readings):
        key = (reading.device_id, reading.msg_id)
        if key == previous and not (i == 0 and first_skip):
            continue
        previous = key
        start = first_skip if i == 0 else 0
        try:
            resources = observations(
                elder_id, reading.device_id, reading.device_ts, reading.data, msg_id=reading.msg_id
            )
        except (ValueError, TypeError, AttributeError):
            if start == 0:  # a resumed reading was counted on the page that first met it
                skipped += 1
            continue
        for j in range(start, len(resources)):
            if len(out) >= limit:
                return ExportPage(out, skipped, (i, j), key)
            out.append(resources[j])
    return ExportPage(out, skipped, None, previous)
