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
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from shared.i18n import Lang, T, text

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://eldercare.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class ReasonDetail(BaseModel):
    """One failed condition of a domain refusal (e.g. a bed): a stable ``code`` to branch on,
    the ``message`` a refusal notice carries (zh-CN, or English on ``Accept-Language: en``).
    A refusal may add members of its own (a reward's ``tier``); its operation says which."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ProblemDetail(BaseModel):
    """The body of every 4xx/5xx response (``application/problem+json``). Besides RFC 9457's
    members: ``errors`` names each field at fault, ``reasons`` lists every failed condition of
    a refusal; a few problems carry one more member, documented below."""

    type: str = Field(description="a stable URI per kind of problem: branch on this")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(None, description="the request path")
    errors: list[FieldError] | None = None
    reasons: list[ReasonDetail] | None = None
    policy_code: str | None = Field(None, description="the policy a refusal applied")
    existing_id: str | None = Field(
        None, description="the resource a 409 conflicts with, when the caller may read it"
    )
    allowed: list[str] | None = Field(None, description="the steps the resource's state allows")


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


def constraint_of(exc: DBAPIError) -> str | None:
    """The name of the constraint a database error is about (asyncpg's, under SQLAlchemy's)."""
    return getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None)


def _render(value: Any) -> Any:
    if isinstance(value, T):
        return str(value)  # e.g. a refusal reason's message inside ``reasons``
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def problem_response(
    problem: Problem, request: Request | None = None, *, instance: str | None = None
) -> Response:
    if instance is None and request is not None:
        instance = request.url.path
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


def _t(zh: str, en: str) -> Any:
    """A message template: ``{name}`` placeholders are filled from the error's ``ctx``."""

    def render(ctx: dict[str, Any]) -> T:
        return T(zh.format_map(ctx), en.format_map(ctx))

    return render


# pydantic's error ``type`` → our text in both languages. Types not listed keep pydantic's
# English (rare ones: they name internals no client sends).
_MESSAGES: dict[str, Any] = {
    "missing": _t("缺少必填字段", "field required"),
    "missing_argument": _t("缺少必填字段", "field required"),
    "extra_forbidden": _t("不允许的字段", "unknown field (not allowed)"),
    "string_type": _t("应为字符串", "must be a string"),
    "string_too_short": _t(
        "至少 {min_length} 个字符", "must have at least {min_length} characters"
    ),
    "string_too_long": _t("最多 {max_length} 个字符", "must have at most {max_length} characters"),
    "string_pattern_mismatch": _t("格式不符合 {pattern}", "must match the pattern {pattern}"),
    "string_unicode": _t("应为有效的 Unicode 字符串", "must be a valid Unicode string"),
    "greater_than": _t("应大于 {gt}", "must be greater than {gt}"),
    "greater_than_equal": _t("应大于或等于 {ge}", "must be greater than or equal to {ge}"),
    "less_than": _t("应小于 {lt}", "must be less than {lt}"),
    "less_than_equal": _t("应小于或等于 {le}", "must be less than or equal to {le}"),
    "finite_number": _t("应为有限数值", "must be a finite number"),
    "int_type": _t("应为整数", "must be an integer"),
    "int_parsing": _t("应为整数", "must be an integer"),
    "int_parsing_size": _t("整数超出范围", "integer is out of range"),
    "int_from_float": _t("应为整数（不能带小数）", "must be a whole number"),
    "float_type": _t("应为数值", "must be a number"),
    "float_parsing": _t("应为数值", "must be a number"),
    "bool_type": _t("应为布尔值 (true/false)", "must be a boolean (true/false)"),
    "bool_parsing": _t("应为布尔值 (true/false)", "must be a boolean (true/false)"),
    "uuid_type": _t("应为 UUID 字符串", "must be a UUID string"),
    "uuid_parsing": _t("应为有效的 UUID", "must be a valid UUID"),
    "uuid_version": _t("UUID 版本不符", "wrong UUID version"),
    "date_type": _t("应为日期 (YYYY-MM-DD)", "must be a date (YYYY-MM-DD)"),
    "date_parsing": _t("应为有效日期 (YYYY-MM-DD)", "must be a valid date (YYYY-MM-DD)"),
    "date_from_datetime_parsing": _t(
        "应为有效日期 (YYYY-MM-DD)", "must be a valid date (YYYY-MM-DD)"
    ),
    "date_from_datetime_inexact": _t("应为日期，不含时间", "must be a date without a time"),
    "datetime_type": _t(
        "应为带时区的时间 (RFC 3339)", "must be a date-time with an offset (RFC 3339)"
    ),
    "datetime_parsing": _t(
        "应为带时区的有效时间 (RFC 3339)", "must be a valid date-time with an offset (RFC 3339)"
    ),
    "datetime_from_date_parsing": _t(
        "应为带时区的有效时间 (RFC 3339)", "must be a valid date-time with an offset (RFC 3339)"
    ),
    "timezone_aware": _t(
        "时间必须带时区偏移（如 +08:00 或 Z）",
        "must carry a UTC offset (e.g. +08:00 or Z); local times are ambiguous",
    ),
    "timezone_naive": _t("时间不应带时区偏移", "must not carry a UTC offset"),
    "literal_error": _t("应为以下之一：{expected}", "must be one of: {expected}"),
    "enum": _t("应为以下之一：{expected}", "must be one of: {expected}"),
    "list_type": _t("应为数组", "must be an array"),
    "tuple_type": _t("应为数组", "must be an array"),
    "set_type": _t("应为数组", "must be an array"),
    "dict_type": _t("应为对象", "must be an object"),
    "model_type": _t("应为对象", "must be an object"),
    "model_attributes_type": _t("应为对象", "must be an object"),
    "too_short": _t("至少 {min_length} 项", "must have at least {min_length} items"),
    "too_long": _t("最多 {max_length} 项", "must have at most {max_length} items"),
    "json_invalid": _t("请求体不是有效的 JSON", "body is not valid JSON"),
    "json_type": _t("应为 JSON 字符串", "must be a JSON string"),
    "union_tag_invalid": _t("类型标签无效", "unknown type tag"),
    "none_required": _t("应为 null", "must be null"),
}


def error_message(err: dict[str, Any]) -> Text:
    """One pydantic error as text for people, in the request's language."""
    kind = err.get("type")
    ctx = err.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        # Our validators raise ValueError(T(...)): keep the T, so it renders in the language
        # of whoever reads it rather than the one it was raised in.
        error = ctx.get("error")
        if error is not None:
            first = error.args[0] if getattr(error, "args", None) else None
            return first if isinstance(first, T) else str(error)
    template = _MESSAGES.get(kind) if isinstance(kind, str) else None
    if template is not None:
        try:
            return template({k: v for k, v in ctx.items() if isinstance(v, str | int | float)})
        except (KeyError, IndexError, ValueError):
            pass  # a ctx without the placeholder: pydantic's own text below
    return err.get("msg", "invalid")


def field_errors(errors: Iterable[dict[str, Any]]) -> list[tuple[str, Text]]:
    out: list[tuple[str, Text]] = []
    for err in errors:
        if err.get("type") == "json_invalid":
            out.append(("body", error_message(err)))
            continue
        out.append((_loc_to_field(err.get("loc", ())), error_message(err)))
    return out


def _joined(errors: list[tuple[str, Text]]) -> T:
    """``field: message; …`` in both languages (the detail follows the request's language)."""

    def render(lang: Lang) -> str:
        return "; ".join(f"{f}: {text(m, lang)}" for f, m in errors)

    return T(render("zh"), render("en"))


def validation_problem(errors: Iterable[dict[str, Any]]) -> Unprocessable:
    fe = field_errors(errors)
    return Unprocessable(_joined(fe[:5]), errors=fe)


_STATUS_DETAILS: dict[int, T] = {
    404: T("没有这个地址", "no such path"),
    405: T(
        "该地址不支持此请求方法，支持的方法见 Allow",
        "the path does not answer this method; see Allow",
    ),
}

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
        detail: Text | None = exc.detail if isinstance(exc.detail, str) else None
        if detail is not None and detail.lower() == title.en.lower():
            detail = _STATUS_DETAILS.get(exc.status_code)  # Starlette's bare reason phrase
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; a client needs
            # every method the path answers (RFC 9110 §15.5.6).
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(
            Problem(detail, status=exc.status_code, slug=slug, title=title, headers=headers),
            request,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # Constraint races that the service layer's checks could not see (two concurrent
        # inserts) end here; the unique/exclusion constraint is the real guard.
        # The constraint's name, not the message: that quotes the conflicting key's values.
        log.info("integrity error on %s (constraint %s)", request.url.path, constraint_of(exc))
        return problem_response(
            Conflict(T("与已有记录冲突", "the resource conflicts with an existing one")), request
        )

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> Response:
        # PostgreSQL refused a *value* (SQLSTATE class 22: a NUL character, a number out of
        # range, text too long): the request's fault, never an outage. A 503 here would
        # make a retrying client loop forever.
        log.info("data error on %s: %s", request.url.path, type(exc.orig).__name__)
        return problem_response(data_problem(), request)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> Response:
        if is_data_error(exc):
            log.info("data error on %s: %s", request.url.path, sqlstate(exc))
            return problem_response(data_problem(), request)
        log.exception("database error on %s", request.url.path)
        if is_bug(exc):
            return problem_response(internal_problem(), request)
        return problem_response(ServiceUnavailable(), request)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(internal_problem(), request)


def internal_problem() -> Problem:
    return Problem(
        T("服务器内部错误", "an unexpected error occurred"),
        status=500,
        slug="internal-error",
        title=T("服务器内部错误", "Internal server error"),
    )


def data_problem() -> Unprocessable:
    return Unprocessable(
        T("请求中的某个值无法保存", "a value in the request cannot be stored"),
        errors=[
            (
                "body",
                T(
                    "含有无法保存的值（如空字符或超出范围的数字）",
                    "holds a value that cannot be stored (e.g. a NUL character or a "
                    "number out of range)",
                ),
            )
        ],
    )


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE behind a database error, raised through SQLAlchemy or raw asyncpg."""
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    orig = getattr(exc, "orig", None)
    cause = getattr(orig, "__cause__", None)
    code = getattr(cause, "sqlstate", None)
    return code if isinstance(code, str) else None


def is_data_error(exc: BaseException) -> bool:
    """A value PostgreSQL refused (SQLSTATE class 22: NUL characters, numbers out of range,
    text too long). SQLAlchemy maps only some of them to ``DataError``, so the SQLSTATE
    decides."""
    if isinstance(exc, DataError):
        return True
    code = sqlstate(exc)
    return code is not None and code.startswith("22")


def is_bug(exc: DBAPIError) -> bool:
    """Errors no retry can fix (a missing table or column, wrong SQL): 500, not 503."""
    from sqlalchemy.exc import NotSupportedError, ProgrammingError

    return isinstance(exc, ProgrammingError | NotSupportedError)


def flat_routes(app: Any) -> Iterable[Any]:
    """The app's routes, flat. FastAPI 0.16x keeps included routers nested and flattens them
    with a private helper (no public one yet); older versions keep a flat list."""
    try:
        from fastapi.routing import _iter_included_route_candidates
    except ImportError:  # pragma: no cover - FastAPI before nested routers
        return app.router.routes
    return _iter_included_route_candidates(app.router.routes)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this request's path."""
    methods: set[str] = set()
    for route in flat_routes(request.app):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


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
} | {503: problem_doc("Service unavailable (retry after `Retry-After` seconds)")}


def add_problem_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """Register ProblemDetail (and FieldError) in an OpenAPI document's components."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    detail = ProblemDetail.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(detail.pop("$defs", {}))
    schemas["ProblemDetail"] = detail
    return openapi
