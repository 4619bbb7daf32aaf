"""Who sees what: a matrix over roles × resources (401/403/404 exact)."""

from __future__ import annotations

import pytest

from shared.errors import Unauthorized
from tests.factories import elder_body, id_number
from tests.integration.builders import make_bed, make_elder, make_org

A, B = "350212", "350213"  # 同安区, 翔安区


@pytest.fixture(scope="module")
async def world(registry):
    org_x, org_y = await make_org(registry, region=A), await make_org(registry, region=B)
    elder_a = await make_elder(registry, region=A)
    # Only 同安区 (A) has a family-bed policy (seeds 000 篇一): elder B's bed opens while
    # they live in A, then they move home to B, where their hukou is.
    elder_b = await make_elder(registry, region=B, residence_region=A)
    bed_a = await make_bed(registry, elder_a, org_x)
    bed_b = await make_bed(registry, elder_b, org_y)
    r = await registry.patch(f"/v1/elders/{elder_b['id']}", {"residence_region": B})
    assert r.status_code == 200, r.text
    return {
        "org_x": org_x,
        "org_y": org_y,
        "elder_a": elder_a,
        "elder_b": elder_b,
        "bed_a": bed_a,
        "bed_b": bed_b,
    }


def principals(w) -> dict[str, dict]:
    return {
        "admin": {"role": "admin"},
        "district_admin_A": {"role": "admin", "region": A},
        "community_A": {"role": "community", "region": A},
        "street_B": {"role": "street", "region": B},
        "org_admin_X": {"role": "org_admin", "org": w["org_x"]["id"]},
        "caregiver_X": {"role": "caregiver", "org": w["org_x"]["id"], "staff": w["org_x"]["id"]},
        "family_A": {"role": "family", "elder": w["elder_a"]["id"]},
        "service": {"role": "service"},
        "gateway": {"role": "gateway"},
    }


# principal → (GET elder A, GET elder B, GET bed A, GET bed B, GET org Y, LIST elders)
MATRIX = {
    "admin": (200, 200, 200, 200, 200, 200),
    "district_admin_A": (200, 404, 200, 404, 404, 200),
    "community_A": (200, 404, 200, 404, 404, 200),
    "street_B": (404, 200, 404, 200, 200, 200),
    "org_admin_X": (200, 404, 200, 404, 404, 200),
    "caregiver_X": (200, 404, 200, 404, 404, 200),
    "family_A": (200, 404, 200, 404, 403, 403),
    "service": (200, 200, 200, 200, 200, 200),
    "gateway": (403, 403, 403, 403, 403, 403),
}


@pytest.mark.parametrize("who", sorted(MATRIX))
async def test_read_matrix(registry, world, who):
    claims = principals(world)[who]
    paths = [
        f"/v1/elders/{world['elder_a']['id']}",
        f"/v1/elders/{world['elder_b']['id']}",
        f"/v1/beds/{world['bed_a']['id']}",
        f"/v1/beds/{world['bed_b']['id']}",
        f"/v1/orgs/{world['org_y']['id']}",
        "/v1/elders",
    ]
    got = []
    for path in paths:
        r = await registry.client.get(path, headers=registry.auth(**claims))
        got.append(r.status_code)
    assert tuple(got) == MATRIX[who]


@pytest.mark.parametrize("who", sorted(MATRIX))
async def test_lists_never_leak(registry, world, who):
    claims = principals(world)[who]
    r = await registry.client.get(
        "/v1/elders", params={"limit": 200}, headers=registry.auth(**claims)
    )
    assert r.status_code == MATRIX[who][5]
    if r.status_code != 200:
        return  # a role that may not list sees nothing at all
    ids = set()
    while True:
        page = r.json()
        ids |= {e["id"] for e in page["items"]}
        if not page["next_cursor"]:
            break
        r = await registry.client.get(
            "/v1/elders",
            params={"limit": 200, "cursor": page["next_cursor"]},
            headers=registry.auth(**claims),
        )
    sees_a, sees_b = MATRIX[who][0] == 200, MATRIX[who][1] == 200
    assert (world["elder_a"]["id"] in ids) == sees_a
    assert (world["elder_b"]["id"] in ids) == sees_b


# principal → (POST elder in A, POST elder in B, POST org, POST bed for elder A at org X)
WRITES = {
    "admin": (201, 201, 201, 422),
    "community_A": (201, 403, 403, 422),
    "street_B": (403, 201, 403, 422),
    "org_admin_X": (201, 403, 403, 422),  # only inside its service area (its region A)
    "caregiver_X": (403, 403, 403, 403),
    "family_A": (403, 403, 403, 403),
    "service": (403, 403, 403, 403),
    "gateway": (403, 403, 403, 403),
}


@pytest.mark.parametrize("who", sorted(WRITES))
async def test_write_matrix(registry, world, who):
    from tests.factories import credit_code

    claims = principals(world)[who]
    headers = registry.auth(**claims)
    got = []
    for region in (A, B):
        body = elder_body(hukou_region=region, id_number=id_number(region=region))
        got.append(
            (await registry.client.post("/v1/elders", json=body, headers=headers)).status_code
        )
    got.append(
        (
            await registry.client.post(
                "/v1/orgs",
                headers=headers,
                json={"name": "N", "credit_code": credit_code(), "region": A},
            )
        ).status_code
    )
    # elder A already holds a bed: allowed writers get the 422 refusal, others 403
    got.append(
        (
            await registry.client.post(
                "/v1/beds",
                headers=headers,
                json={
                    "elder_id": world["elder_a"]["id"],
                    "org_id": world["org_x"]["id"],
                    "station_id": world["org_x"]["station"]["id"],
                },
            )
        ).status_code
    )
    assert tuple(got) == WRITES[who]


async def test_org_cannot_open_beds_for_another_org(registry, world):
    elder = await make_elder(registry, region=A)
    r = await registry.post(
        "/v1/beds",
        {
            "elder_id": elder["id"],
            "org_id": world["org_y"]["id"],
            "station_id": world["org_y"]["station"]["id"],
        },
        role="org_admin",
        org=world["org_x"]["id"],
    )
    assert r.status_code == 403


async def test_tokens_missing_their_scope_are_refused(registry):
    for claims in ({"role": "community"}, {"role": "org_admin"}):
        with pytest.raises(Unauthorized, match="必须带有"):  # issue() refuses to mint them
            registry.token(**claims)
    import jwt

    forged = jwt.encode(
        {"role": "community", "exp": 9999999999, "iss": "eldercare", "aud": "eldercare"},
        "test-secret-" + "x" * 32,
        algorithm="HS256",
    )
    r = await registry.client.get("/v1/elders", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    wrong_key = jwt.encode(
        {"role": "admin", "exp": 9999999999, "iss": "eldercare", "aud": "eldercare"},
        "another-secret-" + "y" * 32,
        algorithm="HS256",
    )
    r = await registry.client.get("/v1/elders", headers={"Authorization": f"Bearer {wrong_key}"})
    assert r.status_code == 401


async def test_an_orgs_access_ends_with_its_bed(registry):
    org = await make_org(registry)
    elder = await make_elder(registry)
    bed = await make_bed(registry, elder, org)
    as_org = {"role": "org_admin", "org": org["id"]}
    path = f"/v1/elders/{elder['id']}"
    assert (await registry.get(path, **as_org)).status_code == 200
    r = await registry.post(f"/v1/beds/{bed['id']}/terminate", {"reason": "入住机构"})
    assert r.status_code == 200
    assert (await registry.get(path, **as_org)).status_code == 404
    assert (await registry.get(path, params={"x": "1"}, **as_org)).status_code == 404


async def test_an_org_loses_an_elder_it_registered_when_its_bed_ends(registry):
    org = await make_org(registry)
    as_org = {"role": "org_admin", "org": org["id"]}
    elder = await make_elder(registry, creator=as_org)
    path = f"/v1/elders/{elder['id']}"
    assert (await registry.get(path, **as_org)).status_code == 200  # before any bed: theirs
    bed = await make_bed(registry, elder, org)
    r = await registry.post(f"/v1/beds/{bed['id']}/terminate", {"reason": "迁出"})
    assert r.status_code == 200
    assert (await registry.get(path, **as_org)).status_code == 404
    listed = await registry.get("/v1/elders", params={"limit": 200}, **as_org)
    assert elder["id"] not in {e["id"] for e in listed.json()["items"]}


async def test_an_org_moves_elders_only_inside_its_area_and_an_office_from_its_own(registry):
    org = await make_org(registry)
    elder = await make_elder(registry)
    await make_bed(registry, elder, org)
    path = f"/v1/elders/{elder['id']}"
    r = await registry.patch(path, {"residence_region": "350213"}, role="org_admin", org=org["id"])
    assert r.status_code == 403
    # the destination's office does not see the elder yet
    r = await registry.patch(
        path, {"residence_region": "350213"}, role="community", region="350213"
    )
    assert r.status_code == 404
    # the office the elder leaves records the move (迁出); their hukou stays, so does access
    r = await registry.patch(
        path, {"residence_region": "350213"}, role="community", region="350212"
    )
    assert r.status_code == 200 and r.json()["residence_region"] == "350213"
