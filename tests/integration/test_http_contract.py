"""What every service promises on the wire (DESIGN.md, Conventions), for every service in
``tests/apps.py``: the OpenAPI document (bearer scheme, ``Idempotency-Key`` on every POST,
a schema for every response, pages not bare arrays), NUL characters refused at the input as
422 naming the field, data errors never taken for outages, 405s naming every method, text for
people in zh-CN by default and English on ``Accept-Language: en``."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi import APIRouter
from sqlalchemy import text

from shared import app as app_factory
from shared.config import Settings
from shared.uow import SessionDep
from tests.apps import SERVICES, factory
from tests.factories import elder_body, id_number
from tests.integration.builders import make_elder, make_org

PROBES = {"/healthz", "/readyz", "/metrics"}
# Found in files other helpers own (reported): operations whose 200 is still a bare array or
# has no schema. The test fails on any *other* such operation.
KNOWN_BARE_ARRAYS: set[tuple[str, str, str]] = set()
KNOWN_UNTYPED = {
    ("telemetry", "get", "/v1/alerts/stream"),  # SSE: text/event-stream has no JSON schema
}


@pytest.fixture(scope="module")
def specs(settings: Settings) -> dict[str, dict]:
    return {name: factory(name)(settings).openapi() for name in SERVICES}


def operations(specs: dict[str, dict]):
    for service, spec in specs.items():
        for path, ops in spec["paths"].items():
            for method, op in ops.items():
                yield service, method, path, op


def test_every_post_declares_idempotency_key_and_every_operation_the_bearer_scheme(specs):
    posts = 0
    for service, method, path, op in operations(specs):
        names = [p["name"] for p in op.get("parameters", [])]
        if method == "post":
            posts += 1
            assert "Idempotency-Key" in names, (service, path)
        if path in PROBES:
            assert "security" not in op, (service, path)
        else:
            assert op.get("security") == [{"bearerAuth": []}], (service, method, path)
    assert posts >= 15
    for spec in specs.values():
        scheme = spec["components"]["securitySchemes"]["bearerAuth"]
        assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == (
            "http",
            "bearer",
            "JWT",
        )


def _typed(schema: dict) -> bool:
    return any(k in schema for k in ("$ref", "type", "anyOf", "oneOf", "allOf", "enum"))


def test_every_response_has_a_schema_and_lists_are_pages(specs):
    bare, untyped = set(), set()
    for service, method, path, op in operations(specs):
        for status, response in op["responses"].items():
            content = response.get("content")
            assert content, (service, method, path, status)
            for media, body in content.items():
                schema = body.get("schema") or {}
                if not _typed(schema):
                    untyped.add((service, method, path))
                elif status.startswith("2") and schema.get("type") == "array":
                    bare.add((service, method, path))
                if status.startswith(("4", "5")) and path != "/readyz":
                    assert media == "application/problem+json", (service, path, status)
    assert bare <= KNOWN_BARE_ARRAYS, bare - KNOWN_BARE_ARRAYS
    assert untyped <= KNOWN_UNTYPED, untyped - KNOWN_UNTYPED
    for spec in specs.values():
        metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        assert list(metrics) == [next(iter(metrics))] and next(iter(metrics)).startswith(
            "text/plain; version="
        )
        ready = spec["paths"]["/readyz"]["get"]["responses"]
        assert {"200", "503"} <= set(ready)


# "queued | running | failed": a description listing the values a field takes
_CHOICES = re.compile(r"^\W*[a-z_]+\W*( \([^)]*\))? \| [a-z_]+")


def _has_enum(schema: dict) -> bool:
    options = [schema, schema.get("items") or {}, *schema.get("anyOf", [])]
    return any("enum" in o or "const" in o or "$ref" in o for o in options if isinstance(o, dict))


def test_values_a_field_takes_are_an_enum_not_prose(specs):
    """A client generator reads ``enum``; a list of values in a description it cannot."""
    prose = []

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            about = node.get("description")
            if isinstance(about, str) and _CHOICES.search(about) and not _has_enum(node):
                prose.append(where)
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    for service, spec in specs.items():
        walk(spec["components"]["schemas"], service)
    assert prose == []


async def test_metrics_are_served_as_documented(registry, specs):
    r = await registry.client.get("/metrics")
    documented = next(
        iter(specs["registry"]["paths"]["/metrics"]["get"]["responses"]["200"]["content"])
    )
    assert r.headers["content-type"] == documented


async def test_every_page_walks_with_its_cursor(registry):
    """Each list a client walks: ``{items, next_cursor}``, ``limit`` honoured, no repeats."""
    org = await make_org(registry)
    elder = await make_elder(registry)
    for i in range(2):
        await registry.post(
            f"/v1/orgs/{org['id']}/stations",
            {"name": f"s{i}", "lat": 24.7, "lon": 118.1, "zone": "rural"},
        )
        await registry.post(
            f"/v1/orgs/{org['id']}/staff",
            {"name": f"p{i}", "role": "nurse", "phone": "13700000000"},
        )
        await registry.post(
            f"/v1/elders/{elder['id']}/family-caregivers",
            {"name": f"c{i}", "relation": "son", "phone": "13900000000", "lives_with": False},
        )
        await registry.post(
            f"/v1/elders/{elder['id']}/assessments",
            {"level": 1, "assessed_on": f"2025-0{i + 1}-01", "assessor": "x"},
        )
        await registry.post(
            f"/v1/elders/{elder['id']}/categories",
            {"code": "low_income", "valid_from": f"202{i}-01-01", "valid_to": f"202{i}-12-31"},
        )
    bed = (
        await registry.post(
            "/v1/beds",
            {"elder_id": elder["id"], "org_id": org["id"], "station_id": org["station"]["id"]},
        )
    ).json()
    for done in ("2026-01-01", "2026-02-01", "2026-03-01"):
        r = await registry.post(
            f"/v1/beds/{bed['id']}/modifications",
            {"kind": "smart", "item": done, "cost_fen": 1, "done_on": done},
        )
        assert r.status_code == 201, r.text
    await registry.post(f"/v1/beds/{bed['id']}/suspend", {"reason": "住院"})
    await registry.post(f"/v1/beds/{bed['id']}/resume")
    lists = [
        f"/v1/orgs/{org['id']}/stations",  # 3: the builder's and two more
        f"/v1/orgs/{org['id']}/staff",
        f"/v1/elders/{elder['id']}/family-caregivers",  # 3 with the builder's
        f"/v1/elders/{elder['id']}/assessments",
        f"/v1/elders/{elder['id']}/categories",
        f"/v1/beds/{bed['id']}/events",
        f"/v1/beds/{bed['id']}/modifications",
    ]
    for path in lists:
        whole = (await registry.get(path, params={"limit": 200})).json()
        assert set(whole) == {"items", "next_cursor"} and whole["next_cursor"] is None, path
        assert len(whole["items"]) >= 2, path
        seen, cursor = [], None
        while True:
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = (await registry.get(path, params=params)).json()
            assert len(page["items"]) <= 1, path
            seen += page["items"]
            if not (cursor := page["next_cursor"]):
                break
        assert seen == whole["items"], path
    mods = (await registry.get(f"/v1/beds/{bed['id']}/modifications")).json()["items"]
    assert [m["done_on"] for m in mods] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    cats = (await registry.get(f"/v1/elders/{elder['id']}/categories")).json()["items"]
    assert [c["valid_from"] for c in cats] == ["2020-01-01", "2021-01-01"]


async def test_dead_letters_are_a_page(telemetry):
    r = await telemetry.get("/v1/dead-letters", params={"limit": 1})
    assert r.status_code == 200 and set(r.json()) == {"items", "next_cursor"}


async def test_a_time_without_an_offset_is_refused_naming_the_field(telemetry):
    for lang, message in (("zh", "时区"), ("en", "offset")):
        r = await telemetry.client.get(
            "/v1/dead-letters",
            params={"since": "2026-01-01T08:00:00"},
            headers={**telemetry.auth(), "Accept-Language": lang},
        )
        assert r.status_code == 422
        [error] = r.json()["errors"]
        assert error["field"] == "since" and message in error["message"]
    for value in ("0.5", "1700000000", "yesterday"):  # never a Unix time, never prose
        r = await telemetry.get("/v1/dead-letters", params={"until": value})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "until", value
    ok = await telemetry.get("/v1/dead-letters", params={"since": "2026-01-01T08:00:00+08:00"})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("service", "method", "path", "body", "field"),
    [
        ("registry", "post", "/v1/elders", {**elder_body(), "name": "陈\u0000"}, "name"),
        ("registry", "post", "/v1/orgs", {"name": "x", "credit_code": "\u0000"}, "credit_code"),
        ("registry", "get", "/v1/elders?category=a%00", None, "category"),
        ("registry", "get", "/v1/devices/ab%00cd", None, "path"),
        ("telemetry", "post", f"/v1/alerts/{uuid.uuid4()}/ack", {"note": "a\u0000b"}, "note"),
        ("telemetry", "get", "/v1/alerts?kind=x%00", None, "kind"),
        ("telemetry", "get", "/v1/dead-letters?reason=%00", None, "reason"),
    ],
)
async def test_a_nul_character_is_bad_input_never_an_outage(
    registry, telemetry, service, method, path, body, field
):
    api = {"registry": registry, "telemetry": telemetry}[service]
    if method == "post":
        r = await api.post(path, body, headers={"Idempotency-Key": str(uuid.uuid4())})
    else:
        r = await api.client.get(path, headers=api.auth())
    assert r.status_code == 422, r.text
    assert "retry-after" not in r.headers
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert r.json()["instance"]


async def test_nested_nul_fields_are_named(registry):
    org = await make_org(registry)
    r = await registry.post(
        f"/v1/orgs/{org['id']}/staff",
        {"name": "x", "role": "nurse", "phone": "13700000000", "certificates": ["ok", "bad\u0000"]},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "certificates.1"
    # an escaped backslash before "u0000" is text, not a NUL: accepted
    r = await registry.client.post(
        "/v1/orgs",
        content=b'{"name": "a\\\\u0000", "credit_code": "' + org["credit_code"].encode() + b'"}',
        headers={**registry.auth(), "content-type": "application/json"},
    )
    assert r.status_code == 409  # reached the service: a duplicate credit code


async def test_a_value_the_database_refuses_is_422_not_503(settings: Settings):
    """Whatever slips past the input check (a NUL made server-side here), PostgreSQL's data
    errors (SQLSTATE class 22) are the request's fault: 422, never 503 + Retry-After."""
    import httpx

    router = APIRouter()

    @router.get("/nul")
    async def nul(session: SessionDep) -> dict[str, str]:
        await session.execute(text("SELECT CAST(:v AS text)"), {"v": "a\x00b"})
        return {}

    @router.get("/overflow")
    async def overflow(session: SessionDep) -> dict[str, str]:
        await session.execute(text("SELECT CAST(:v AS smallint)"), {"v": 10**6})
        return {}

    app = app_factory.create_app(
        service="probe", title="probe", description="", routers=[router], settings=settings
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            for path in ("/nul", "/overflow"):
                r = await client.get(path)
                assert r.status_code == 422, (path, r.text)
                assert "retry-after" not in r.headers
                assert r.json()["type"].endswith("/validation-error")


async def test_405_lists_every_method_of_the_path(registry, telemetry):
    elder = await make_elder(registry, level=None, caregiver=False)
    cases = [
        (registry, "DELETE", f"/v1/elders/{elder['id']}", "GET, PATCH"),
        (registry, "PUT", "/v1/elders", "GET, POST"),
        (registry, "POST", f"/v1/beds/{uuid.uuid4()}/events", "GET"),  # not a bed step
        (registry, "GET", f"/v1/beds/{uuid.uuid4()}/activate", "POST"),
        (registry, "PUT", "/v1/calendar/deadline", "GET"),  # not a day
        (telemetry, "DELETE", "/v1/alerts", "GET"),
    ]
    for api, method, path, allow in cases:
        r = await api.client.request(method, path, headers=api.auth())
        assert r.status_code == 405, (method, path, r.text)
        assert r.headers["allow"] == allow, (method, path)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await registry.client.post(f"/v1/beds/{uuid.uuid4()}/fly", headers=registry.auth())
    assert r.status_code == 404  # no catch-all swallows unknown steps


async def test_text_for_people_follows_accept_language(registry):
    org = await make_org(registry)
    elder = await make_elder(registry, level=None, caregiver=False, living_arrangement="alone")
    body = {"elder_id": elder["id"], "org_id": org["id"], "station_id": org["station"]["id"]}
    zh = await registry.post("/v1/beds", body)
    en = await registry.client.post(
        "/v1/beds", json=body, headers={**registry.auth(), "Accept-Language": "en-GB,en;q=0.9"}
    )
    assert zh.status_code == en.status_code == 422
    assert [r["code"] for r in zh.json()["reasons"]] == [r["code"] for r in en.json()["reasons"]]
    zh_messages = {r["code"]: r["message"] for r in zh.json()["reasons"]}
    en_messages = {r["code"]: r["message"] for r in en.json()["reasons"]}
    assert (
        zh_messages["lives_alone"].startswith("独居")
        and "institutional care" in en_messages["lives_alone"]
    )
    assert (zh.json()["title"], en.json()["title"]) == (
        "不符合家庭养老床位条件",
        "Not eligible for a home care bed",
    )
    preview = await registry.client.get(
        f"/v1/elders/{elder['id']}/bed-eligibility",
        headers={**registry.auth(), "Accept-Language": "en"},
    )
    assert {r["message"] for r in preview.json()["reasons"]} <= set(en_messages.values())
    missing = f"/v1/beds/{uuid.uuid4()}"
    assert "未找到床位" in (await registry.get(missing)).json()["detail"]
    r = await registry.client.get(missing, headers={**registry.auth(), "Accept-Language": "en"})
    assert r.json()["detail"].startswith("bed ") and r.json()["title"] == "Not found"
    bad = {**elder_body(), "zone": "suburb", "lat": "north", "unexpected": 1}
    del bad["name"]
    for lang, expected in (
        (
            "zh",
            {
                "zone": "应为以下之一：'urban' or 'rural'",
                "lat": "应为数值",
                "unexpected": "不允许的字段",
                "name": "缺少必填字段",
            },
        ),
        (
            "en",
            {
                "zone": "must be one of: 'urban' or 'rural'",
                "lat": "must be a number",
                "unexpected": "unknown field (not allowed)",
                "name": "field required",
            },
        ),
    ):
        r = await registry.client.post(
            "/v1/elders", json=bad, headers={**registry.auth(), "Accept-Language": lang}
        )
        got = {e["field"]: e["message"] for e in r.json()["errors"]}
        assert got == expected, lang
        assert r.json()["detail"].startswith(next(iter(got)) + ": ")
    for lang, message in (("zh", "校验码不符"), ("en", "check digit does not match")):
        wrong = id_number()
        wrong = wrong[:17] + ("0" if wrong[17] != "0" else "1")
        r = await registry.client.post(
            "/v1/elders",
            json=elder_body(id_number=wrong),
            headers={**registry.auth(), "Accept-Language": lang},
        )
        assert message in r.json()["errors"][0]["message"], lang


async def test_an_org_registers_elders_only_in_its_service_area(registry):
    org = await make_org(registry, region="350212")  # 同安区; its builder station has no region
    as_org = {"role": "org_admin", "org": org["id"]}
    inside = elder_body(hukou_region="350212", id_number=id_number(region="350212"))
    assert (await registry.post("/v1/elders", inside, **as_org)).status_code == 201
    across = elder_body(hukou_region="350213", id_number=id_number(region="350213"))
    r = await registry.post("/v1/elders", across, **as_org)
    assert r.status_code == 403 and "350212" in r.json()["detail"]
    # living inside the area counts like hukou does (the same two codes scope reads)
    lives_here = elder_body(
        hukou_region="350213", residence_region="350212101", id_number=id_number(region="350213")
    )
    assert (await registry.post("/v1/elders", lives_here, **as_org)).status_code == 201
    # a station across the border extends the area
    r = await registry.post(
        f"/v1/orgs/{org['id']}/stations",
        {"name": "翔安站", "lat": 24.6, "lon": 118.2, "zone": "rural", "region": "350213"},
    )
    assert r.status_code == 201
    assert (await registry.post("/v1/elders", across, **as_org)).status_code == 201
    # an org that does not exist serves nowhere
    ghost = {"role": "org_admin", "org": str(uuid.uuid4())}
    assert (await registry.post("/v1/elders", elder_body(), **ghost)).status_code == 403


async def test_a_duplicate_id_number_tells_a_stranger_nothing_about_the_elder(registry):
    org_x, org_y = await make_org(registry), await make_org(registry)
    as_x = {"role": "org_admin", "org": org_x["id"]}
    as_y = {"role": "org_admin", "org": org_y["id"]}
    by_office = elder_body(id_number=id_number())  # registered by the district office
    first = await registry.post("/v1/elders", by_office)
    by_other_org = elder_body(id_number=id_number())  # registered by another org
    second = await registry.post("/v1/elders", by_other_org, **as_y)
    assert first.status_code == second.status_code == 201
    answers = []
    for body in (by_office, by_other_org):
        r = await registry.post("/v1/elders", {**body, "name": "别名"}, **as_x)
        assert r.status_code == 409
        answers.append(r.json())
    # the same fixed document whoever registered the elder: no id, no region, no name
    assert answers[0] == answers[1]
    assert answers[0]["type"].endswith("/id-number-registered")
    assert "existing_id" not in answers[0]
    for leaked in (first.json()["id"], second.json()["id"], "350212", "陈阿婆"):
        assert leaked not in str(answers[0])
    # whoever may read the elder is told which one it is
    mine = await registry.post("/v1/elders", {**by_other_org, "name": "别名"}, **as_y)
    assert mine.json()["existing_id"] == second.json()["id"]
    office = await registry.post("/v1/elders", {**by_office, "name": "别名"})
    assert office.json()["existing_id"] == first.json()["id"]
    spec = (await registry.client.get("/openapi.json")).json()
    assert "existing_id" in spec["paths"]["/v1/elders"]["post"]["description"]
