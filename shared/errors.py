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

from shared.i18n import T, text

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


Text = str | T


class Problem(Exception):
    """Raise from anywhere in a request to answer with a problem document.

    ``title``, ``detail`` and field messages are text for people: give a ``T`` (zh + en) and
    the document is rendered in the request's language (``shared.i18n``)."""

    status = 400
    slug = "bad-request"
    title: Text = T("请求有误", "Bad request")

    def __init__(
        self,
        detail: Text | None = None,
        *,
        status: int | None = None,
        slug: str | None = None,
        title: Text | None = None,
        errors: Sequence[tuple[str, Text]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(str(detail or self.title))
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
            "title": text(self.title),
            "status": self.status,
        }
        if self.detail:
            body["detail"] = text(self.detail)
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [
                {"field": e["field"], "message": text(e["message"])} for e in self.errors
            ]
        body.update(self.extra)
        return body


class NotFound(Problem):
    status, slug, title = 404, "not-found", T("未找到", "Not found")


class Conflict(Problem):
    status, slug, title = 409, "conflict", T("冲突", "Conflict")


class Unprocessable(Problem):
    status, slug, title = 422, "validation-error", T("请求无效", "Request is not valid")


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", T("需要身份认证", "Authentication required")

    def __init__(self, detail: Text | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="eldercare"'})
        super().__init__(detail, **kw)


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", T("无权执行此操作", "Not allowed")


class ServiceUnavailable(Problem):
    """The database (or another dependency) is not answering: the client should retry."""

    status, slug, title = 503, "service-unavailable", T("服务暂不可用", "Service unavailable")

    def __init__(
        self,
        detail: Text = T("数据库暂不可用，请稍后重试", "the database is unavailable; retry later"),
        **kw: Any,
    ) -> None:
        kw.setdefault("headers", {"Retry-After": "1"})
        super().__init__(detail, **kw)


def _render(value: Any) -> Any:
    if isinstance(value, T):
        return str(value)  # e.g. a refusal reason's message inside ``reasons``
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def problem_response(problem: Problem, request: Request | None = None) -> Response:
    instance = request.url.path if request is not None else None
    return Response(
        orjson.dumps(problem.body(instance), default=_render),
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


_STATUS_SLUGS: dict[int, tuple[str, T]] = {
    400: ("bad-request", T("请求有误", "Bad request")),
    401: ("unauthorized", T("需要身份认证", "Authentication required")),
    403: ("forbidden", T("无权执行此操作", "Not allowed")),
    404: ("not-found", T("未找到", "Not found")),
    405: ("method-not-allowed", T("不支持该请求方法", "Method not allowed")),
    409: ("conflict", T("冲突", "Conflict")),
    413: ("payload-too-large", T("请求体过大", "Request body too large")),
    415: ("unsupported-media-type", T("不支持的媒体类型", "Unsupported media type")),
    422: ("validation-error", T("请求无效", "Request is not valid")),
    429: ("too-many-requests", T("请求过于频繁", "Too many requests")),
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
        slug, title = _STATUS_SLUGS.get(
            exc.status_code, ("http-error", T("HTTP 错误", "HTTP error"))
        )
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title.en else None
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
                T("服务器内部错误", "an unexpected error occurred"),
                status=500,
                slug="internal-error",
                title=T("服务器内部错误", "Internal server error"),
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
    code: problem_doc(title.en)
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
