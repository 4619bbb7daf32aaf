"""Who may switch VISIT mode (it pauses inactivity and bed-exit alerts): a caregiver only for
themselves, as active staff of the org, for an elder with an active bed of that org and a
dispatch visit of theirs checked in there now."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.integration.builders import make_org
from tests.integration.telemetry_helpers import make_home


async def make_staff(registry, org: dict, name: str = "王护理员") -> str:
    r = await registry.post(
        f"/v1/orgs/{org['id']}/staff",
        {"name": name, "role": "caregiver", "phone": "13800000001", "on_duty": True},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def put(telemetry, elder_id: str, body: dict, **claims):
    return await telemetry.client.put(
        f"/v1/elders/{elder_id}/visit-mode", json=body, headers=telemetry.auth(**claims)
    )


async def checked_in(database_url: str, home: dict, staff: str) -> None:
    """A dispatch visit of ``staff`` checked in at the home (dispatch's own row; set-up)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO dispatch.visits (id, bed_id, elder_id, org_id, staff_id, kind, status,"
            " planned_start, planned_end, items, check_in_at, check_in_received_at, items_done,"
            " late) VALUES ($1, $2, $3, $4, $5, 'adhoc', 'checked_in', now(),"
            " now() + interval '1 hour', '{meal}', now(), now(), '{}', false)",
            uuid.uuid4(),
            uuid.UUID(home["bed_id"]),
            uuid.UUID(home["elder_id"]),
            uuid.UUID(home["org"]["id"]),
            uuid.UUID(staff),
        )
    finally:
        await conn.close()


def caregiver(org: dict, staff: str) -> dict:
    return {"role": "caregiver", "org": org["id"], "staff": staff}


async def recorded_staff(database_url: str, elder_id: str) -> uuid.UUID | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            "SELECT staff_id FROM telemetry.visit_mode WHERE elder_id = $1", uuid.UUID(elder_id)
        )
    finally:
        await conn.close()


async def test_a_caregiver_switches_visit_mode_for_themselves(registry, telemetry, database_url):
    home = await make_home(registry)
    me = await make_staff(registry, home["org"])
    # not while no visit of theirs is checked in there
    r = await put(telemetry, home["elder_id"], {"active": True}, **caregiver(home["org"], me))
    assert r.status_code == 403, r.text
    await checked_in(database_url, home, me)
    r = await put(telemetry, home["elder_id"], {"active": True}, **caregiver(home["org"], me))
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True
    assert await recorded_staff(database_url, home["elder_id"]) == uuid.UUID(me)
    r = await put(
        telemetry, home["elder_id"], {"active": True, "staff_id": me}, **caregiver(home["org"], me)
    )
    assert r.status_code == 200, r.text
    r = await put(telemetry, home["elder_id"], {"active": False}, **caregiver(home["org"], me))
    assert r.status_code == 200 and r.json()["active"] is False
    assert await recorded_staff(database_url, home["elder_id"]) is None


async def test_a_caregiver_may_not_act_for_someone_else(registry, telemetry, database_url):
    home = await make_home(registry)
    me = await make_staff(registry, home["org"])
    colleague = await make_staff(registry, home["org"], "李护理员")
    r = await put(
        telemetry,
        home["elder_id"],
        {"active": True, "staff_id": colleague},
        **caregiver(home["org"], me),
    )
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await recorded_staff(database_url, home["elder_id"]) is None
    # nor end a colleague's visit
    await checked_in(database_url, home, colleague)
    assert (
        await put(
            telemetry, home["elder_id"], {"active": True}, **caregiver(home["org"], colleague)
        )
    ).status_code == 200
    r = await put(telemetry, home["elder_id"], {"active": False}, **caregiver(home["org"], me))
    assert r.status_code == 403
    assert await recorded_staff(database_url, home["elder_id"]) == uuid.UUID(colleague)


async def test_only_staff_of_the_org_for_an_elder_with_an_active_bed_of_it(
    registry, telemetry, database_url
):
    home = await make_home(registry)
    # a staff id that is not on the org's staff (a token minted for someone else's org)
    stranger = str(uuid.uuid4())
    r = await put(telemetry, home["elder_id"], {"active": True}, **caregiver(home["org"], stranger))
    assert r.status_code == 403
    # another org's caregiver does not even see the elder
    other = await make_org(registry)
    outsider = await make_staff(registry, other)
    r = await put(telemetry, home["elder_id"], {"active": True}, **caregiver(other, outsider))
    assert r.status_code == 404
    # the org still sees the elder while the bed is suspended, but there is no service to visit
    me = await make_staff(registry, home["org"])
    await checked_in(database_url, home, me)
    r = await registry.post(f"/v1/beds/{home['bed_id']}/suspend", {"reason": "住院"})
    assert r.status_code == 200, r.text
    r = await put(telemetry, home["elder_id"], {"active": True}, **caregiver(home["org"], me))
    assert r.status_code == 403, r.text
    r = await registry.post(f"/v1/beds/{home['bed_id']}/resume")
    assert r.status_code == 200, r.text
    r = await put(telemetry, home["elder_id"], {"active": True}, **caregiver(home["org"], me))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("own", [True, False])
async def test_an_org_admin_names_only_its_own_staff(registry, telemetry, own):
    home = await make_home(registry)
    other = await make_org(registry)
    staff = await make_staff(registry, home["org"] if own else other)
    r = await put(
        telemetry,
        home["elder_id"],
        {"active": True, "staff_id": staff},
        role="org_admin",
        org=home["org"]["id"],
    )
    assert r.status_code == (200 if own else 403), r.text


async def test_dispatch_and_admins_are_trusted(registry, telemetry, database_url):
    home = await make_home(registry)
    staff = await make_staff(registry, home["org"])
    for claims in ({"role": "service"}, {"role": "admin"}):
        r = await put(telemetry, home["elder_id"], {"active": True, "staff_id": staff}, **claims)
        assert r.status_code == 200, r.text
    assert await recorded_staff(database_url, home["elder_id"]) == uuid.UUID(staff)
