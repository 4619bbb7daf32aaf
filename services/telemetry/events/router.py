"""Readings and raw events: an elder's vital signs (JSON or FHIR R4) and a device's events."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request
from prometheus_client import Counter
from pydantic import AfterValidator
from starlette.responses import Response

from services.telemetry.events import cursor as cursors
from services.telemetry.events import fhir, service
from services.telemetry.events.schemas import (
    FHIR_BUNDLE_SCHEMA,
    EventRead,
    VitalReading,
    VitalsPage,
)
from shared import scoping
from shared.auth import Principal, Role, ScopedReader
from shared.dates import IsoDateTime
from shared.errors import NotFound, Unprocessable
from shared.i18n import T
from shared.ids import DEVICE_ID_PATTERN
from shared.pagination import Limit, Page
from shared.uow import SessionDep

log = logging.getLogger(__name__)

router = APIRouter(tags=["readings"])

Reader = ScopedReader

DEFAULT_WINDOW = timedelta(hours=24)


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-14:00 is past the last representable instant
        raise ValueError(
            str(T("超出可表示的时间范围", "outside the representable time range"))
        ) from None


# RFC 3339 text with an offset (a number, or a time without an offset, is refused: 422 naming
# the field), held in UTC.
Instant = Annotated[IsoDateTime, AfterValidator(_utc)] | None
FHIR_SKIPPED = Counter(
    "eldercare_fhir_skipped_readings_total",
    "stored readings left out of a FHIR export because they could not be exported",
)
# Accept values that ask for FHIR JSON (the R4 name, and the DSTU2 one clients still send).
FHIR_MEDIA_TYPES = frozenset({fhir.MEDIA_TYPE, "application/json+fhir"})


def wants_fhir(accept: str | None) -> bool:
    """True when ``Accept`` prefers FHIR JSON to plain JSON (q-values honoured; ties go to
    FHIR, since only a FHIR client names it at all)."""
    if not accept:
        return False
    best = {"fhir": 0.0, "json": 0.0}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        kind = "fhir" if media in FHIR_MEDIA_TYPES else "json"
        if kind == "fhir" or media == "application/json":
            best[kind] = max(best[kind], q)
    return best["fhir"] > 0 and best["fhir"] >= best["json"]


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or datetime.now(UTC)
    try:
        since = since or until - DEFAULT_WINDOW
    except OverflowError:  # until at the very start of the calendar
        raise Unprocessable(
            T("时间范围无效", "the time window is empty"),
            errors=[("until", T("太早", "too early for a 24-hour window"))],
        ) from None
    if since > until:
        raise Unprocessable(
            T("时间范围无效", "the time window is empty"),
            errors=[("since", T("不能晚于 until", "must not be after until"))],
        )
    return since, until


@router.get(
    "/v1/elders/{elder_id}/vitals",
    response_model=VitalsPage,
    summary="Vital signs, newest first; `format=fhir` (or `Accept: application/fhir+json`) "
    "answers an R4 searchset Bundle of Observations (LOINC, UCUM)",
    responses={
        200: {
            "description": "JSON: a page of readings (`limit` counts readings). FHIR: a "
            "searchset Bundle (`limit` counts Observations; `link` `next` is the next page).",
            "content": {fhir.MEDIA_TYPE: {"schema": FHIR_BUNDLE_SCHEMA}},
        }
    },
)
async def elder_vitals(
    elder_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Principal = Reader,
    since: Annotated[Instant, Query(description="with an offset; default: until − 24 h")] = None,
    until: Annotated[Instant, Query(description="with an offset; default: now")] = None,
    cursor: cursors.CursorParam = None,
    limit: Limit = 100,
    format: Annotated[
        Literal["json", "fhir"] | None,
        Query(description="default: FHIR when `Accept` asks for `application/fhir+json`"),
    ] = None,
) -> Any:
    since, until = _window(since, until)
    at = cursors.decode(cursor, "vitals")
    await scoping.require_elder(session, principal, elder_id)
    as_fhir = format == "fhir" or (format is None and wants_fhir(request.headers.get("accept")))
    if as_fhir:
        page = await service.vitals_fhir(
            session=session, elder_id=elder_id, since=since, until=until, at=at, limit=limit
        )
        if page.skipped:
            FHIR_SKIPPED.inc(page.skipped)
            log.warning("FHIR export of an elder left out %d unexportable reading(s)", page.skipped)
        next_url = None
        if page.next is not None:
            next_url = str(
                request.url.include_query_params(
                    since=since.isoformat(),
                    until=until.isoformat(),
                    limit=limit,
                    format="fhir",
                    cursor=cursors.encode(page.next),
                )
            )
        body = fhir.bundle(
            page.observations, self_url=str(request.url), next_url=next_url, skipped=page.skipped
        )
        return Response(orjson.dumps(body), media_type=fhir.MEDIA_TYPE)
    rows = await service.vitals(
        session=session, elder_id=elder_id, since=since, until=until, at=at, limit=limit + 1
    )
    return VitalsPage(
        elder_id=elder_id,
        since=since,
        until=until,
        items=[_reading(r) for r in rows[:limit]],
        next_cursor=cursors.encode(service.vitals_position(rows[limit]))
        if len(rows) > limit
        else None,
    )


def _reading(row: Any) -> VitalReading:
    data = row.data if isinstance(row.data, dict) else {}
    values = {}
    for key in ("heart_rate", "resp_rate", "spo2", "systolic", "diastolic", "temp_c"):
        value = data.get(key)
        # what ingest stored is a finite number; anything else is not shown as a reading
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            values[key] = value
    return VitalReading(
        ts=row.device_ts,
        received_at=row.received_at,
        device_id=row.device_id,
        msg_id=row.msg_id,
        **values,
    )


@router.get(
    "/v1/devices/{device_id}/events",
    response_model=Page[EventRead],
    summary="A device's events by arrival time, newest first (device time and arrival time)",
)
async def device_events(
    device_id: Annotated[str, Path(pattern=DEVICE_ID_PATTERN)],
    session: SessionDep,
    principal: Principal = Reader,
    event: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[Instant, Query(description="arrival time, with an offset")] = None,
    until: Annotated[Instant, Query(description="arrival time, with an offset")] = None,
    cursor: cursors.CursorParam = None,
    limit: Limit = 100,
) -> Page[EventRead]:
    at = cursors.decode(cursor, "device")
    if principal.role is Role.family:
        raise NotFound(T(f"未找到设备 {device_id}", f"device {device_id} not found"))
    await scoping.require_device(session, principal, device_id)
    rows = await service.device_events(
        session=session,
        device_id=device_id,
        event=event,
        since=since,
        until=until,
        at=at,
        limit=limit + 1,
    )
    return Page(
        items=[EventRead.model_validate(r) for r in rows[:limit]],
        next_cursor=cursors.encode(service.device_position(rows[limit]))
        if len(rows) > limit
        else None,
    )
