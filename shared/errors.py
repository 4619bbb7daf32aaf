"""RFC 9457 problem details for every error a service returns.

Clients branch on ``type`` (a stable URI per problem kind) and show ``detail``; validation
failures carry ``errors: [{field, message}]`` naming each field at fault, and domain refusals
(e.g. bed eligibility) carry ``reasons``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://eldercare.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class ProblemDetail(BaseModel):
    """The body of every 4xx/5xx response (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    reasons: list[dict[str, Any]] | None = None


class Problem(Exception):
    """Raise from anywhere in a request to answer with a problem document."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        slug: str | None = None,
        title: str | None = None,
        errors: Sequence[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        if status is not None:
            self.status = status
        if slug is not None:
            self.slug = slug
        if title is not None:
            self.title = title
        self.errors = [{"field": f, "message": m} for f, m in errors] if errors else None
        self.headers = headers
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class Unprocessable(Problem):
    status, slug, title = 422, "validation-error", "Request is not valid"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="eldercare"'})
        super().__init__(detail, **kw)


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


class ServiceUnavailable(Problem):
    """The database (or another dependency) is not answering: the client should retry."""

    status, slug, title = 503, "service-unavailable", "Service unavailable"

    def __init__(self, detail: str = "the database is unavailable; retry later", **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": "1"})
        super().__init__(detail, **kw)


def problem_response(problem: Problem, request: Request | None = None) -> Response:
    instance = request.url.path if request is not None else None
    return Response(
        orjson.dumps(problem.body(instance)),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=problem.headers,
    )


def _loc_to_field(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc]
    # FastAPI prefixes the location with where it came from; clients want the field path.
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] or parts
    return ".".join(parts)


def field_errors(errors: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    out = []
    for err in errors:
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            out.append(("body", "body is not valid JSON"))
            continue
        out.append((_loc_to_field(err.get("loc", ())), msg))
    return out


def validation_problem(errors: Iterable[dict[str, Any]]) -> Unprocessable:
    fe = field_errors(errors)
    detail = "; ".join(f"{f}: {m}" for f, m in fe[:5])
    return Unprocessable(detail, errors=fe)


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Request is not valid"),
    429: ("too-many-requests", "Too many requests"),
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(validation_problem(exc.errors()), request)

    @app.exception_handler(ValidationError)
    async def _pyd_validation(request: Request, exc: ValidationError) -> Response:
        return problem_response(validation_problem(exc.errors()), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(
            Problem(detail, status=exc.status_code, slug=slug, title=title, headers=exc.headers),
            request,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # Constraint races that the service layer's checks could not see (two concurrent
        # inserts) end here; the unique/exclusion constraint is the real guard.
        log.info("integrity error on %s: %s", request.url.path, exc.orig)
        return problem_response(Conflict("the resource conflicts with an existing one"), request)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> Response:
        log.exception("database error on %s", request.url.path)
        return problem_response(
            ServiceUnavailable(),
            request,
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(
            Problem(
                "an unexpected error occurred",
                status=500,
                slug="internal-error",
                title="Internal server error",
            ),
            request,
        )


def problem_doc(description: str) -> dict[str, Any]:
    """An OpenAPI response entry whose body is a problem document."""
    return {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
    }


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: problem_doc(title)
    for code, (_, title) in _STATUS_SLUGS.items()
    if code in {400, 401, 403, 404, 409, 413, 422}
}


def add_problem_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """Register ProblemDetail (and FieldError) in an OpenAPI document's components."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    detail = ProblemDetail.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(detail.pop("$defs", {}))
    schemas["ProblemDetail"] = detail
    return openapi
