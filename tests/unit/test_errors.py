"""shared.errors: RFC 9457 problem documents."""

from __future__ import annotations

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
    assert problem.errors == [
        {"field": "id_number", "message": "check digit does not match"},
        {"field": "limit", "message": "too big"},
        {"field": "scores.eating", "message": "missing"},
        {"field": "body", "message": "field required"},
        {"field": "id_number", "message": "bad"},
        {"field": "items.0.name", "message": "bad"},
    ]
    assert problem.detail == (
        "id_number: check digit does not match; limit: too big; scores.eating: missing; "
        "body: field required; id_number: bad"
    )


def test_validation_problem_json_invalid_and_defaults():
    assert field_errors([{"loc": ("body", 12), "msg": "JSON decode", "type": "json_invalid"}]) == [
        ("body", "body is not valid JSON")
    ]
    assert field_errors([{"type": "x"}]) == [("", "invalid")]
    body = validation_problem([{"loc": ("body", "phone"), "msg": "bad phone"}]).body()
    assert body["type"] == PROBLEM_BASE + "validation-error"
    assert body["errors"] == [{"field": "phone", "message": "bad phone"}]
    assert body["detail"] == "phone: bad phone"
