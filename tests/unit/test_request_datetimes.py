"""Every datetime a client sends, in any service, is RFC 3339 text with an offset: no field
or query parameter takes pydantic's lax forms (a Unix number, a local time)."""

from __future__ import annotations

import datetime as dt
import types
import typing

import pytest
from fastapi.routing import APIRoute
from pydantic import (
    AwareDatetime,
    BaseModel,
    FutureDate,
    FutureDatetime,
    NaiveDatetime,
    PastDate,
    PastDatetime,
)

from shared.config import Settings
from shared.dates import iso_date, iso_datetime, wall_clock
from shared.errors import flat_routes
from tests.apps import SERVICES, factory

DATETIMES = (dt.datetime, AwareDatetime, NaiveDatetime, PastDatetime, FutureDatetime)
DATES = (dt.date, PastDate, FutureDate)


def _lax(annotation, metadata=()) -> bool:
    """True when some date/datetime the annotation admits lacks the ISO-text-only validator
    (looking through Optional, Annotated and containers; metadata of an Annotated applies
    to what it wraps)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        return _lax(inner, (*metadata, *extra))
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        return any(_lax(a, metadata) for a in typing.get_args(annotation))
    if annotation in DATETIMES or annotation in DATES:
        validator = iso_datetime if annotation in DATETIMES else iso_date
        return not any(getattr(m, "func", None) is validator for m in metadata)
    if annotation is dt.time:  # a time of day: wall-clock text only (shared.dates)
        return not any(getattr(m, "func", None) is wall_clock for m in metadata)
    return False


def _models(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models(a)]


def _loose_fields(model: type[BaseModel], where: str, seen: set) -> list[str]:
    if model in seen:
        return []
    seen.add(model)
    loose = []
    for name, field in model.model_fields.items():
        if _lax(field.annotation, tuple(field.metadata)):
            loose.append(f"{where}.{name}")
        for inner in _models(field.annotation):
            loose += _loose_fields(inner, f"{where}.{name}", seen)
    return loose


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_request_takes_a_lax_date_or_time(service, tmp_path):
    settings = Settings(
        database_url="postgresql://x@127.0.0.1/x",
        data_dir=tmp_path,
        jwt_secret="s" * 40,
        pii_key="k" * 40,
        pii_hash_key="h" * 40,
    )
    app = factory(service)(settings)
    loose: list[str] = []
    for route in flat_routes(app):
        if not isinstance(route, APIRoute):
            continue
        where = f"{','.join(sorted(route.methods))} {route.path}"
        for param in route.dependant.query_params + route.dependant.path_params:
            if _lax(param.field_info.annotation, tuple(param.field_info.metadata)):
                loose.append(f"{where} ?{param.name}")
        for param in route.dependant.body_params:
            for model in _models(param.field_info.annotation):
                loose += _loose_fields(model, f"{where} body", set())
    assert not loose, "use shared.dates.IsoDate / IsoDateTime:\n" + "\n".join(loose)
