"""Elders through the HTTP API against real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from shared.audit import AuditEntry
from tests.factories import elder_body, id_number

PROBLEM = "application/problem+json"


def wrong_check_digit(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


def fields_of(response) -> set[str]:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return {e["field"] for e in response.json().get("errors", [])}


async def test_create_derives_identity_and_masks(registry):
    number = id_number(born=__import__("datetime").date(1948, 2, 29), female=True)
    r = await registry.post("/v1/elders", elder_body(id_number=number))
    assert r.status_code == 201, r.text
    body = r.json()
    uuid.UUID(body["id"])
    assert body["birth_date"] == "1948-02-29"
    assert body["gender"] == "female"
    assert body["age"] >= 78
    assert body["id_number_masked"] == number[:4] + "*" * 10 + number[-4:]
    assert body["id_number"] is None and body["phone"] is None
    assert body["phone_masked"] == "138****5678"
    assert body["residence_region"] == "350212"


async def test_id_number_is_not_stored_in_clear(registry, settings):
    number = id_number()
    r = await registry.post("/v1/elders", elder_body(id_number=number))
    assert r.status_code == 201
    import asyncpg

    conn = await asyncpg.connect(settings.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT * FROM registry.elders WHERE id = $1", uuid.UUID(r.json()["id"])
        )
    finally:
        await conn.close()
    assert number.encode() not in b"".join(
        v if isinstance(v, bytes) else str(v).encode() for v in row.values()
    )


async def test_duplicate_id_number_conflicts(registry):
    body = elder_body()
    first = await registry.post("/v1/elders", body)
    assert first.status_code == 201
    second = await registry.post("/v1/elders", {**body, "name": "别名"})
    assert second.status_code == 409
    assert second.json()["existing_id"] == first.json()["id"]
    # lower-case x and whitespace are the same number
    if body["id_number"].endswith("X"):
        third = await registry.post("/v1/elders", {**body, "id_number": body["id_number"].lower()})
        assert third.status_code == 409


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"id_number": "35021219450101123"}, "id_number"),  # 17 chars
        ({"id_number": "3502121945010112AB"}, "id_number"),  # letters
        ({"id_number": "350212194513011230"}, "id_number"),  # month 13
        ({"id_number": id_number(born=__import__("datetime").date(2099, 1, 1))}, "id_number"),
        ({"id_number": wrong_check_digit(id_number())}, "id_number"),
        ({"hukou_region": "999999"}, "hukou_region"),
        ({"hukou_region": "3502"}, "hukou_region"),
        ({"lat": 91.0}, "lat"),
        ({"lon": -181.0}, "lon"),
        ({"lat": "north"}, "lat"),
        ({"zone": "suburb"}, "zone"),
        ({"living_arrangement": "unknown"}, "living_arrangement"),
        ({"phone": "12345"}, "phone"),
        ({"name": 123}, "name"),
        ({"name": ""}, "name"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_bad_elder_input_is_a_problem_naming_the_field(registry, override, field):
    body = elder_body(**override)
    r = await registry.post("/v1/elders", body)
    assert r.status_code == 422, r.text
    assert field in fields_of(r)
    assert r.json()["status"] == 422
    assert r.json()["type"].endswith("/validation-error")


async def test_missing_fields_and_wrong_json(registry):
    r = await registry.post("/v1/elders", {})
    assert r.status_code == 422
    assert {"id_number", "name", "hukou_region", "address", "zone"} <= fields_of(r)
    r = await registry.client.post(
        "/v1/elders",
        content=b"{not json",
        headers={**registry.auth(), "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert fields_of(r)
    r = await registry.post("/v1/elders", [1, 2, 3])
    assert r.status_code == 422


async def test_oversized_body_is_413(registry):
    big = elder_body(address="x" * 2_000_000)
    r = await registry.post("/v1/elders", big)
    assert r.status_code == 413
    assert r.headers["content-type"].startswith(PROBLEM)


async def test_lat_without_lon(registry):
    body = elder_body()
    del body["lon"]
    r = await registry.post("/v1/elders", body)
    assert r.status_code == 422


async def test_unauthenticated_and_bad_tokens(registry):
    r = await registry.client.get("/v1/elders")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = await registry.client.get("/v1/elders", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401
    expired = registry.codec.issue(role="admin", ttl=-10)
    r = await registry.client.get("/v1/elders", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    assert (r.json()["title"], r.json()["detail"]) == ("需要身份认证", "令牌已过期")
    r = await registry.client.get(
        "/v1/elders", headers={"Authorization": f"Bearer {expired}", "Accept-Language": "en"}
    )
    assert (r.json()["title"], r.json()["detail"]) == (
        "Authentication required",
        "token has expired",
    )


async def test_pii_reveal_is_role_gated_and_audited(registry, settings):
    number = id_number()
    created = (await registry.post("/v1/elders", elder_body(id_number=number))).json()
    path = f"/v1/elders/{created['id']}"
    r = await registry.get(path, params={"include": "pii"}, role="community", region="3502")
    assert r.status_code == 200
    assert r.json()["id_number"] == number
    assert r.json()["phone"] == "13812345678"
    r = await registry.get(path, params={"include": "pii"}, role="org_admin", org=str(uuid.uuid4()))
    assert r.status_code == 404  # not their elder at all
    r = await registry.get(path, params={"include": "pii"}, role="family", elder=created["id"])
    assert r.status_code == 403
    async with registry.app.state.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.resource_id == uuid.UUID(created["id"]))
            )
        ).all()
    assert len(rows) == 1
    assert rows[0].actor_role == "community"
    assert sorted(rows[0].fields) == ["id_number", "phone"]
    assert rows[0].action == "read_pii"


async def test_list_filters_and_cursor_pagination(registry):
    region = "350211"  # 集美区: a region only this test uses
    ids = []
    for i in range(7):
        body = elder_body(
            hukou_region=region,
            zone="rural" if i % 2 else "urban",
            id_number=id_number(region=region),
        )
        r = await registry.post("/v1/elders", body)
        assert r.status_code == 201
        ids.append(r.json()["id"])
    seen, cursor = [], None
    while True:
        params = {"region": region, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await registry.get("/v1/elders", params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids  # creation order, no duplicates, nothing skipped
    rural = (await registry.get("/v1/elders", params={"region": region, "zone": "rural"})).json()
    assert len(rural["items"]) == 3
    r = await registry.get("/v1/elders", params={"cursor": "!!!"})
    assert r.status_code == 422
    r = await registry.get("/v1/elders", params={"limit": 1000})
    assert r.status_code == 422
    assert "limit" in fields_of(r)


async def test_idempotent_create_replays_and_never_duplicates(registry):
    body = elder_body()
    headers = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    # Keys are per caller (the token's subject): the same handset, retrying concurrently.
    results = await asyncio.gather(
        *[registry.post("/v1/elders", body, headers=headers, sub="handset-1") for _ in range(5)]
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] * 5, [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in results) == 4
    reuse = await registry.post("/v1/elders", elder_body(), headers=headers, sub="handset-1")
    assert reuse.status_code == 422
    assert reuse.json()["type"].endswith("/idempotency-key-reused")


async def test_failed_idempotent_request_is_not_remembered(registry):
    headers = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    bad = elder_body(hukou_region="999999")
    assert (await registry.post("/v1/elders", bad, headers=headers, sub="h2")).status_code == 422
    # The key was not burnt by the failure: the corrected request under it goes through.
    good = await registry.post("/v1/elders", elder_body(), headers=headers, sub="h2")
    assert good.status_code == 201, good.text
    again = await registry.post("/v1/elders", elder_body(), headers=headers, sub="other-caller")
    assert again.status_code == 201  # another caller's identical key is another key


async def test_update_elder(registry):
    created = (await registry.post("/v1/elders", elder_body())).json()
    r = await registry.patch(
        f"/v1/elders/{created['id']}", {"address": "新地址 2 号", "phone": "13900001111"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["address"] == "新地址 2 号"
    assert r.json()["phone_masked"] == "139****1111"


async def test_health_and_metrics(registry):
    assert (await registry.client.get("/healthz")).json() == {"status": "ok"}
    ready = await registry.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    metrics = await registry.client.get("/metrics")
    assert "eldercare_http_requests_total" in metrics.text
    r = await registry.client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert r.headers["x-request-id"] == "abc123"


async def test_fast_path_and_fastapi_route_answer_identically(registry):
    created = (await registry.post("/v1/elders", elder_body())).json()
    path = f"/v1/elders/{created['id']}"
    for claims in (
        {"role": "admin"},
        {"role": "community", "region": "3502"},
        {"role": "community", "region": "1101"},
        {"role": "gateway"},
        {},
    ):
        headers = registry.auth(**claims) if claims else {}
        fast = await registry.client.get(path, headers=headers)  # no query: the fast path
        slow = await registry.client.get(path, params={"x": "1"}, headers=headers)  # FastAPI
        assert fast.status_code == slow.status_code, claims
        # errors too: the same problem document, `instance` included
        assert fast.json() == slow.json(), claims
        assert fast.headers["content-type"] == slow.headers["content-type"], claims
        if fast.status_code >= 400:
            assert fast.json()["instance"] == path
    assert fast.status_code == 401
    missing = f"/v1/elders/{uuid.uuid4()}"
    r = await registry.client.get(missing, headers=registry.auth())
    assert r.status_code == 404 and r.json()["instance"] == missing
    r = await registry.client.get("/v1/elders/not-a-uuid", headers=registry.auth())
    assert r.status_code == 422
