from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.pagination import Page


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    device_id: str
    gateway_id: str
    event: str
    msg_id: str
    device_ts: datetime
    received_at: datetime
    skew_s: int
    data: dict[str, Any]


class VitalReading(BaseModel):
    """One reading of a vital-signs device: whichever signs it measured (any subset)."""

    ts: datetime = Field(description="device time")
    received_at: datetime
    device_id: str
    msg_id: str
    heart_rate: int | float | None = Field(None, description="/min")
    resp_rate: int | float | None = Field(None, description="/min")
    spo2: int | float | None = Field(None, description="%")
    systolic: int | float | None = Field(None, description="mmHg")
    diastolic: int | float | None = Field(None, description="mmHg")
    temp_c: int | float | None = Field(None, description="°C")


class VitalsPage(Page[VitalReading]):
    """Readings newest first, in the window ``[since, until]`` (device time)."""

    elder_id: uuid.UUID
    since: datetime
    until: datetime


# The FHIR variant of the vitals 200, for the OpenAPI document: an R4 searchset Bundle
# (http://hl7.org/fhir/R4/bundle.html) of vital-signs Observations. The resources are
# described by the FHIR specification itself, so only the Bundle's own shape is spelt out.
FHIR_BUNDLE_SCHEMA: dict[str, Any] = {
    "title": "FhirSearchsetBundle",
    "description": "HL7 FHIR R4 `Bundle` of type `searchset`: one page of vital-signs "
    "`Observation`s (LOINC codes, UCUM units; profiles "
    "http://hl7.org/fhir/StructureDefinition/vitalsigns). `link` `next` carries the cursor of "
    "the next page; `total` (matches of the whole search) is left out when not computed. "
    "Readings that could not be exported are reported by an `OperationOutcome` entry "
    "(`search.mode: outcome`).",
    "type": "object",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string", "enum": ["searchset"]},
        "total": {"type": "integer", "minimum": 0},
        "link": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["relation", "url"],
                "properties": {
                    "relation": {"type": "string", "enum": ["self", "next"]},
                    "url": {"type": "string", "format": "uri"},
                },
            },
        },
        "entry": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["fullUrl", "resource", "search"],
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": {
                        "type": "object",
                        "required": ["resourceType"],
                        "properties": {
                            "resourceType": {
                                "type": "string",
                                "enum": ["Observation", "OperationOutcome"],
                            },
                            "id": {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"},
                        },
                    },
                    "search": {
                        "type": "object",
                        "properties": {"mode": {"type": "string", "enum": ["match", "outcome"]}},
                    },
                },
            },
        },
    },
}
