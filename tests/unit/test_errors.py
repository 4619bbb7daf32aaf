"""shared.errors: RFC 9457 problem documents."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NaiveDatetime,
    StrictInt,
    ValidationError,
    field_validator,
)

from shared.errors import (
    PROBLEM_BASE,
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    ProblemDetail,
    Unauthorized,
    Unprocessable,
    field_errors,
    validation_problem,
)
from shared.i18n import T, current_lang


def test_problem_body_minimal():
    assert Problem().body() == {
        "type": "https://eldercare.dev/problems/bad-request",
        "title": "请求有误",
        "status": 400,
    }
    assert str(Problem()) == "请求有误"


def test_problem_text_follows_the_request_language():
    problem = NotFound(T("未找到老人", "elder not found"), errors=[("id", T("无此人", "no one"))])
    assert problem.body()["detail"] == "未找到老人"
    token = current_lang.set("en")
    try:
        body = problem.body()
    finally:
        current_lang.reset(token)
    assert (body["title"], body["detail"]) == ("Not found", "elder not found")
    assert body["errors"] == [{"field": "id", "message": "no one"}]


def test_problem_body_full():
    p = Problem(
        "the bed is taken",
        status=409,
        slug="bed-taken",
        title="Bed taken",
        errors=[("bed_id", "already assigned")],
        reasons=[{"code": "open_bed_exists", "message": "m"}],
    )
    body = p.body("/beds/1")
    assert body == {
        "type": PROBLEM_BASE + "bed-taken",
        "title": "Bed taken",
        "status": 409,
        "detail": "the bed is taken",
        "instance": "/beds/1",
        "errors": [{"field": "bed_id", "message": "already assigned"}],
        "reasons": [{"code": "open_bed_exists", "message": "m"}],
    }
    assert ProblemDetail.model_validate(body).errors[0].field == "bed_id"
    assert str(p) == "the bed is taken"


def test_subclasses():
    cases = [
        (NotFound(), 404, "not-found"),
        (Conflict(), 409, "conflict"),
        (Unprocessable(), 422, "validation-error"),
        (Unauthorized(), 401, "unauthorized"),
        (Forbidden(), 403, "forbidden"),
    ]
    for problem, status, slug in cases:
        body = problem.body()
        assert body["status"] == status
        assert body["type"] == PROBLEM_BASE + slug
        assert "detail" not in body
    assert Unauthorized().headers == {"WWW-Authenticate": 'Bearer realm="eldercare"'}
    assert Forbidden().headers is None


def test_override_does_not_leak_to_class():
    NotFound("x", status=410)
    assert NotFound().status == 404


def test_validation_problem_maps_loc_to_field():
    problem = validation_problem(
        [
            {"loc": ("body", "id_number"), "msg": "check digit does not match", "type": "x"},
            {"loc": ("query", "limit"), "msg": "too big", "type": "x"},
            {"loc": ("body", "scores", "eating"), "msg": "missing", "type": "x"},
            {"loc": ("body",), "msg": "field required", "type": "missing"},
            {"loc": ("id_number",), "msg": "bad", "type": "x"},
            {"loc": ("body", "items", 0, "name"), "msg": "bad", "type": "x"},
        ]
    )
    assert isinstance(problem, Unprocessable)
    assert problem.status == 422
    # unknown error types keep pydantic's text; "missing" is ours, in the request's language
    assert problem.body()["errors"] == [
        {"field": "id_number", "message": "check digit does not match"},
        {"field": "limit", "message": "too big"},
        {"field": "scores.eating", "message": "missing"},
        {"field": "body", "message": "缺少必填字段"},
        {"field": "id_number", "message": "bad"},
        {"field": "items.0.name", "message": "bad"},
    ]
    assert problem.body()["detail"] == (
        "id_number: check digit does not match; limit: too big; scores.eating: missing; "
        "body: 缺少必填字段; id_number: bad"
    )
    token = current_lang.set("en")
    try:
        assert problem.body()["detail"].endswith("body: field required; id_number: bad")
    finally:
        current_lang.reset(token)


def test_validation_problem_json_invalid_and_defaults():
    assert field_errors([{"loc": ("body", 12), "msg": "JSON decode", "type": "json_invalid"}]) == [
        ("body", T("请求体不是有效的 JSON", "body is not valid JSON"))
    ]
    assert field_errors([{"type": "x"}]) == [("", "invalid")]
    body = validation_problem([{"loc": ("body", "phone"), "msg": "bad phone"}]).body()
    assert body["type"] == PROBLEM_BASE + "validation-error"
    assert body["errors"] == [{"field": "phone", "message": "bad phone"}]
    assert body["detail"] == "phone: bad phone"


class _Everything(BaseModel):
    model_config = ConfigDict(extra="forbid")

    s: str = Field(min_length=2, max_length=3, pattern="^a")
    gt: int = Field(gt=0)
    ge: int = Field(ge=0)
    lt: int = Field(lt=5)
    le: StrictInt = Field(le=5)
    f: float
    b: bool
    u: uuid.UUID
    d: date
    dt: AwareDatetime
    naive: NaiveDatetime | None = None
    lit: Literal["x", "y"]
    items: list[int] = Field(max_length=1)
    ours: str | None = None

    @field_validator("ours")
    @classmethod
    def _ours(cls, v: str | None) -> str | None:
        raise ValueError(T("我们的消息", "our message"))


def _messages(data: dict, lang: str) -> dict[str, tuple[str, str]]:
    token = current_lang.set(lang)
    try:
        try:
            _Everything.model_validate(data)
        except ValidationError as exc:
            problem = validation_problem(exc.errors())
        else:
            raise AssertionError("expected a validation error")
        return {e["field"]: e["message"] for e in problem.body()["errors"]}
    finally:
        current_lang.reset(token)


BAD = {
    "s": "bbbb",
    "gt": 0,
    "ge": -1,
    "lt": 5,
    "le": 6,
    "f": "x",
    "b": "maybe",
    "u": "nope",
    "d": "2020-13-01",
    "dt": "2026-01-01T08:00:00",
    "naive": "2026-01-01T08:00:00+08:00",
    "lit": "z",
    "items": [1, 2],
    "ours": "x",
    "extra": 1,
}


def test_pydantic_errors_are_translated():
    zh, en = _messages(BAD, "zh"), _messages(BAD, "en")
    expected = {
        "s": ("最多 3 个字符", "must have at most 3 characters"),
        "gt": ("应大于 0", "must be greater than 0"),
        "ge": ("应大于或等于 0", "must be greater than or equal to 0"),
        "lt": ("应小于 5", "must be less than 5"),
        "le": ("应小于或等于 5", "must be less than or equal to 5"),
        "f": ("应为数值", "must be a number"),
        "b": ("应为布尔值 (true/false)", "must be a boolean (true/false)"),
        "u": ("应为有效的 UUID", "must be a valid UUID"),
        "d": ("应为有效日期 (YYYY-MM-DD)", "must be a valid date (YYYY-MM-DD)"),
        "dt": (
            "时间必须带时区偏移（如 +08:00 或 Z）",
            "must carry a UTC offset (e.g. +08:00 or Z); local times are ambiguous",
        ),
        "naive": ("时间不应带时区偏移", "must not carry a UTC offset"),
        "lit": ("应为以下之一：'x' or 'y'", "must be one of: 'x' or 'y'"),
        "items": ("最多 1 项", "must have at most 1 items"),
        "ours": ("我们的消息", "our message"),
        "extra": ("不允许的字段", "unknown field (not allowed)"),
    }
    for name, (z, e) in expected.items():
        assert (zh[name], en[name]) == (z, e), name


def test_more_pydantic_error_types():
    zh = _messages({"s": "a", "gt": "x", "ge": 1.5, "lt": 1, "le": "1", "f": 1}, "zh")
    assert zh["s"] == "至少 2 个字符"
    assert zh["gt"] == "应为整数"
    assert zh["ge"] == "应为整数（不能带小数）"
    assert zh["le"] == "应为整数"
    assert zh["b"] == zh["u"] == zh["d"] == zh["dt"] == zh["lit"] == "缺少必填字段"
    en = _messages({"s": "bb", "gt": 1, "ge": 1, "lt": 1, "le": 1, "f": 1}, "en")
    assert en["s"] == "must match the pattern ^a"


def test_rare_error_types_fall_back_to_pydantic_english():
    body = validation_problem([{"loc": ("body", "x"), "msg": "Some rare thing", "type": "rare"}])
    assert body.body()["errors"] == [{"field": "x", "message": "Some rare thing"}]
