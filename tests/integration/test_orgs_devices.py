from __future__ import annotations

import uuid

from shared.mqtt_credentials import verify
from tests.factories import credit_code
from tests.integration.builders import make_bed, make_elder, make_org


async def test_org_validation_and_duplicates(registry):
    code = credit_code()
    r = await registry.post("/v1/orgs", {"name": "A", "credit_code": code, "region": "350212"})
    assert r.status_code == 201
    r = await registry.post("/v1/orgs", {"name": "B", "credit_code": code, "region": "350212"})
    assert r.status_code == 409
    bad = code[:-1] + ("0" if code[-1] != "0" else "1")
    r = await registry.post("/v1/orgs", {"name": "C", "credit_code": bad, "region": "350212"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "credit_code"
    r = await registry.post(
        "/v1/orgs",
        {"name": "D", "credit_code": credit_code(), "region": "350212", "licences": "none"},
    )
    assert r.status_code == 422


async def test_staff(registry):
    org = await make_org(registry)
    r = await registry.post(
        f"/v1/orgs/{org['id']}/staff",
        {
            "name": "王护理",
            "role": "caregiver",
            "phone": "13700000000",
            "station_id": org["station"]["id"],
            "insured_until": "2099-12-31",
            "certificates": [{"kind": "养老护理员职业技能等级证书", "number": "NO-1"}],
        },
    )
    assert r.status_code == 201, r.text
    staff = r.json()
    assert staff["insured"] is True and staff["on_duty"] is False
    assert staff["phone_masked"] == "137****0000"
    other = await make_org(registry)
    r = await registry.post(
        f"/v1/orgs/{org['id']}/staff",
        {
            "name": "x",
            "role": "pilot",
            "phone": "13700000000",
            "station_id": other["station"]["id"],
        },
    )
    assert r.status_code == 422
    r = await registry.post(
        f"/v1/orgs/{org['id']}/staff",
        {
            "name": "x",
            "role": "nurse",
            "phone": "13700000000",
            "station_id": other["station"]["id"],
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "station_id"
    # the caregiver switches their own duty status, and nothing else
    me = {"role": "caregiver", "org": org["id"], "staff": staff["id"]}
    r = await registry.patch(f"/v1/staff/{staff['id']}", {"on_duty": True}, **me)
    assert r.status_code == 200 and r.json()["on_duty"] is True
    r = await registry.patch(f"/v1/staff/{staff['id']}", {"insured_until": "2100-01-01"}, **me)
    assert r.status_code == 403
    on_duty = (await registry.get(f"/v1/orgs/{org['id']}/staff", params={"on_duty": "true"})).json()
    assert [s["id"] for s in on_duty["items"]] == [staff["id"]]


async def test_gateway_credentials_are_shown_once(registry):
    org = await make_org(registry)
    elder = await make_elder(registry)
    bed = await make_bed(registry, elder, org)
    gw = f"gw-{uuid.uuid4().hex[:8]}"
    r = await registry.post(
        "/v1/devices",
        {"device_id": gw, "kind": "gateway", "elder_id": elder["id"], "bed_id": bed["id"]},
    )
    assert r.status_code == 201, r.text
    creds = r.json()["mqtt"]
    assert creds["username"] == gw and creds["topic_prefix"] == f"eldercare/v1/{gw}/"
    assert len(creds["password"]) >= 24
    again = (await registry.get(f"/v1/devices/{gw}")).json()
    assert again["mqtt"] is None
    async with registry.app.state.sessionmaker() as session:
        from sqlalchemy import select

        from services.registry.devices.models import Device

        stored = await session.scalar(
            select(Device.mqtt_password_hash).where(Device.device_id == gw)
        )
    assert stored.startswith("$7$") and creds["password"] not in stored
    assert verify(creds["password"], stored)

    button = {
        "device_id": f"btn-{gw}",
        "gateway_id": gw,
        "kind": "emergency_button",
        "elder_id": elder["id"],
    }
    r = await registry.post("/v1/devices", button)
    assert r.status_code == 201 and r.json()["mqtt"] is None
    assert (await registry.post("/v1/devices", button)).status_code == 409
    stranger = await make_elder(registry)
    r = await registry.post(
        "/v1/devices", {**button, "device_id": "btn-x-1", "elder_id": stranger["id"]}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "gateway_id"
    for bad_id in ("a/b", "has#hash", "plus+", "x", ""):
        r = await registry.post("/v1/devices", {**button, "device_id": bad_id})
        assert r.status_code == 422, bad_id
    listed = (await registry.get("/v1/devices", params={"gateway_id": gw})).json()
    assert {d["device_id"] for d in listed["items"]} == {gw, f"btn-{gw}"}


async def test_replayed_gateway_registration_keeps_the_password_encrypted_at_rest(registry):
    import asyncpg

    elder = await make_elder(registry)
    gw = f"gw-{uuid.uuid4().hex[:8]}"
    body = {"device_id": gw, "kind": "gateway", "elder_id": elder["id"]}
    headers = {"Idempotency-Key": f"install-{gw}"}
    first = await registry.post("/v1/devices", body, headers=headers, sub="installer-1")
    again = await registry.post("/v1/devices", body, headers=headers, sub="installer-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    password = first.json()["mqtt"]["password"]
    assert again.json()["mqtt"]["password"] == password
    conn = await asyncpg.connect(registry.app.state.settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT body FROM common.idempotency_keys WHERE key = $1", f"install-{gw}"
        )
    finally:
        await conn.close()
    assert len(rows) == 1 and password.encode() not in rows[0]["body"]
    # the same subject with another role is another caller: no replay of that response
    other = await registry.post(
        "/v1/devices",
        body,
        headers=headers,
        sub="installer-1",
        role="org_admin",
        org=str(uuid.uuid4()),
    )
    # (this org cannot see the elder: its own attempt runs for real and is refused)
    assert other.status_code == 422, other.text
    assert [e["field"] for e in other.json()["errors"]] == ["elder_id"]
    assert "idempotent-replayed" not in other.headers
