"""Create realistic registry state through the API (what an app would do)."""

from __future__ import annotations

from datetime import timedelta

from shared import clock
from tests.factories import credit_code, elder_body, id_number


async def make_org(api, region: str = "350212") -> dict:
    r = await api.post(
        "/v1/orgs",
        {
            "name": "同安颐养服务中心",
            "credit_code": credit_code(),
            "region": region,
            "medical_license": "PDY12345",
        },
    )
    assert r.status_code == 201, r.text
    org = r.json()
    r = await api.post(
        f"/v1/orgs/{org['id']}/stations",
        {"name": "大同站", "lat": 24.73, "lon": 118.15, "zone": "urban"},
    )
    assert r.status_code == 201, r.text
    org["station"] = r.json()
    return org


async def make_elder(
    api,
    *,
    region: str = "350212",
    level: int | None = 2,
    caregiver: bool = True,
    creator: dict | None = None,
    **overrides,
) -> dict:
    """An elder registered by an admin (or by ``creator``'s claims), assessed by an admin."""
    body = elder_body(hukou_region=region, **{"id_number": id_number(region=region), **overrides})
    r = await api.post("/v1/elders", body, **(creator or {}))
    assert r.status_code == 201, r.text
    elder = r.json()
    if level is not None:
        r = await api.post(
            f"/v1/elders/{elder['id']}/assessments",
            {
                "level": level,
                "assessed_on": str(clock.today() - timedelta(days=3)),
                "assessor": "第三方评估机构",
            },
        )
        assert r.status_code == 201, r.text
    if caregiver:
        r = await api.post(
            f"/v1/elders/{elder['id']}/family-caregivers",
            {"name": "陈女儿", "relation": "child", "phone": "13900000000", "lives_with": True},
        )
        assert r.status_code == 201, r.text
    return elder


async def make_bed(api, elder: dict, org: dict) -> dict:
    r = await api.post(
        "/v1/beds",
        {"elder_id": elder["id"], "org_id": org["id"], "station_id": org["station"]["id"]},
    )
    assert r.status_code == 201, r.text
    return r.json()
