"""Random bodies at every POST, as an unscoped admin and as a community officer with a region
(and as an org admin for the raw bytes): always a 2xx or a 4xx problem+json, never a 5xx."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.factories import credit_code, elder_body

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


ROLES = {
    "admin": {"role": "admin"},
    "community": {"role": "community", "region": "350212"},
}


@pytest.fixture(scope="module")
def client(settings):
    from services.registry.app import create_app

    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {app.state.token_codec.issue(role='admin')}"
        yield c


@pytest.fixture(scope="module")
def tokens(client) -> dict[str, dict[str, str]]:
    codec = client.app.state.token_codec
    return {who: {"Authorization": f"Bearer {codec.issue(**c)}"} for who, c in ROLES.items()}


@pytest.fixture(scope="module")
def paths(client):
    org = client.post(
        "/v1/orgs", json={"name": "F", "credit_code": credit_code(), "region": "350212"}
    ).json()
    station = client.post(
        f"/v1/orgs/{org['id']}/stations",
        json={"name": "s", "lat": 24.7, "lon": 118.1, "zone": "urban"},
    ).json()
    elder = client.post("/v1/elders", json=elder_body()).json()
    client.post(
        f"/v1/elders/{elder['id']}/assessments",
        json={"level": 2, "assessed_on": "2026-11-01", "assessor": "x"},
    )
    client.post(
        f"/v1/elders/{elder['id']}/family-caregivers",
        json={"name": "x", "relation": "child", "phone": "13900000000", "lives_with": True},
    )
    bed = client.post(
        "/v1/beds", json={"elder_id": elder["id"], "org_id": org["id"], "station_id": station["id"]}
    ).json()
    valid = {
        "/v1/elders": elder_body(),
        f"/v1/elders/{elder['id']}/assessments": {
            "level": 1,
            "assessed_on": "2026-01-01",
            "assessor": "x",
        },
        f"/v1/elders/{elder['id']}/categories": {"code": "low_income", "valid_from": "2026-01-01"},
        f"/v1/elders/{elder['id']}/family-caregivers": {
            "name": "y",
            "relation": "spouse",
            "phone": "13800000000",
            "lives_with": True,
        },
        "/v1/orgs": {"name": "G", "credit_code": credit_code(), "region": "350212"},
        f"/v1/orgs/{org['id']}/stations": {"name": "t", "lat": 1, "lon": 2, "zone": "rural"},
        f"/v1/orgs/{org['id']}/staff": {"name": "z", "role": "nurse", "phone": "13700000000"},
        "/v1/beds": {"elder_id": elder["id"], "org_id": org["id"], "station_id": station["id"]},
        f"/v1/beds/{bed['id']}/modifications": {
            "kind": "smart",
            "item": "i",
            "cost_fen": 1,
            "done_on": "2026-01-01",
        },
        f"/v1/beds/{bed['id']}/suspend": {"reason": "r"},
        "/v1/devices": {"device_id": "gw-fuzz-1", "kind": "gateway", "elder_id": elder["id"]},
    }
    return valid


def check(response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == response.status_code


@pytest.mark.parametrize("who", sorted(ROLES))
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_bodies(client, tokens, paths, who, data):
    path = data.draw(st.sampled_from(sorted(paths)))
    body = data.draw(json_values)
    check(client.post(path, json=body, headers=tokens[who]))


@pytest.mark.parametrize("who", sorted(ROLES))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_one_field_mutated(client, tokens, paths, who, data):
    path = data.draw(st.sampled_from(sorted(paths)))
    body = dict(paths[path])
    key = data.draw(st.sampled_from(sorted(body)) | st.text(max_size=8))
    body[key] = data.draw(
        json_values | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
    )
    check(client.post(path, json=body, headers=tokens[who]))


@pytest.mark.parametrize("who", sorted(ROLES))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_raw_bytes(client, tokens, paths, who, raw):
    headers = {"content-type": "application/json", **tokens[who]}
    check(client.post("/v1/elders", content=raw, headers=headers))
