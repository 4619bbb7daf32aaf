"""Dated moves of an elder (POST/GET /v1/elders/{id}/moves) against real PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.registry.elders.moves import service as moves_service
from shared import clock
from tests.integration.builders import make_bed, make_elder, make_org

PROBLEM = "application/problem+json"
A, B = "350212", "350213"  # 同安区, 翔安区


def fields_of(response) -> set[str]:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return {e["field"] for e in response.json().get("errors", [])}


def moves_of(elder: dict) -> str:
    return f"/v1/elders/{elder['id']}/moves"


async def test_a_backdated_move_is_history_and_changes_the_current_place(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    r = await registry.post(
        moves_of(elder),
        {"residence_region": "350203", "hukou_region": "350203", "moved_on": "2025-04-11"},
    )
    assert r.status_code == 201, r.text
    move = r.json()
    assert move["kind"] == "move" and move["valid_from"] == "2025-04-11"
    assert (move["hukou_region"], move["residence_region"]) == ("350203", "350203")
    assert move["current"] is True
    got = (await registry.get(f"/v1/elders/{elder['id']}")).json()
    assert (got["hukou_region"], got["residence_region"]) == ("350203", "350203")

    page = (await registry.get(moves_of(elder), params={"limit": 1})).json()
    assert [m["kind"] for m in page["items"]] == ["registered"]
    first = page["items"][0]
    assert first["valid_from"] == elder["birth_date"] and first["hukou_region"] == A
    assert first["current"] is False and page["next_cursor"]
    rest = (
        await registry.get(moves_of(elder), params={"limit": 1, "cursor": page["next_cursor"]})
    ).json()
    assert [m["id"] for m in rest["items"]] == [move["id"]] and rest["next_cursor"] is None


async def test_only_the_hukou_given_changes_and_an_earlier_move_slots_in(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    r = await registry.post(
        moves_of(elder), {"residence_region": "350203", "moved_on": "2025-06-01"}
    )
    assert r.status_code == 201 and r.json()["hukou_region"] == A  # hukou unchanged
    # recorded later, happened earlier: the later move stays the current place
    r = await registry.post(
        moves_of(elder), {"residence_region": "350206", "moved_on": "2025-01-01"}
    )
    assert r.status_code == 201 and r.json()["current"] is False
    got = (await registry.get(f"/v1/elders/{elder['id']}")).json()
    assert got["residence_region"] == "350203"
    days = [m["valid_from"] for m in (await registry.get(moves_of(elder))).json()["items"]]
    assert days == [elder["birth_date"], "2025-01-01", "2025-06-01"]


async def test_an_earlier_hukou_change_carries_through_later_moves(registry):
    """A residence-only move on 06-01 holds a copy of the hukou then (同安); a hukou change
    recorded afterwards for 03-01 must not snap back to 同安 on 06-01."""
    elder = await make_elder(registry, level=None, caregiver=False)
    r = await registry.post(
        moves_of(elder), {"residence_region": "350203", "moved_on": "2025-06-01"}
    )
    assert r.status_code == 201, r.text
    r = await registry.post(
        moves_of(elder),
        {"residence_region": "350206", "hukou_region": B, "moved_on": "2025-03-01"},
        role="admin",
    )
    assert r.status_code == 201, r.text
    items = (await registry.get(moves_of(elder))).json()["items"]
    assert [(m["valid_from"], m["hukou_region"], m["residence_region"]) for m in items] == [
        (elder["birth_date"], A, A),
        ("2025-03-01", B, "350206"),
        ("2025-06-01", B, "350203"),
    ]
    got = (await registry.get(f"/v1/elders/{elder['id']}")).json()
    assert (got["hukou_region"], got["residence_region"]) == (B, "350203")


async def test_a_move_ahead_takes_effect_on_its_day(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    day = clock.today() + timedelta(days=10)
    r = await registry.post(moves_of(elder), {"residence_region": "350203", "moved_on": str(day)})
    assert r.status_code == 201 and r.json()["current"] is False
    assert (await registry.get(f"/v1/elders/{elder['id']}")).json()["residence_region"] == A
    async with registry.app.state.sessionmaker() as session, session.begin():
        assert await moves_service.apply_due(session, today=day - timedelta(days=1)) == 0
    async with registry.app.state.sessionmaker() as session, session.begin():
        assert await moves_service.apply_due(session, today=day) >= 1
    got = (await registry.get(f"/v1/elders/{elder['id']}")).json()
    assert got["residence_region"] == "350203"


async def test_the_office_an_elder_leaves_records_the_move_and_then_loses_them(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    body = {"residence_region": B, "moved_on": "2025-03-01"}
    # the destination's office cannot see the elder yet: not found, nothing leaked
    r = await registry.post(moves_of(elder), body, role="street", region=B)
    assert r.status_code == 404
    r = await registry.post(
        moves_of(elder),
        {"residence_region": "350212101", "moved_on": "2025-03-01"},
        role="community",
        region=A,
    )
    assert r.status_code == 201, r.text
    # the office the elder leaves records where they went (迁出): it is the one paying
    r = await registry.post(
        moves_of(elder), {**body, "moved_on": "2025-03-02"}, role="community", region=A
    )
    assert r.status_code == 201, r.text
    # the hukou is still in 同安区: its office still sees the elder (the rule of every read)
    assert (await registry.get(moves_of(elder), role="community", region=A)).status_code == 200
    r = await registry.post(
        moves_of(elder),
        {**body, "hukou_region": B, "moved_on": "2025-03-03"},
        role="street",
        region=A,
    )
    assert r.status_code == 201, r.text
    # moved out of 同安区: the office no longer sees the elder or its history; 翔安 does
    assert (await registry.get(moves_of(elder), role="community", region=A)).status_code == 404
    assert (await registry.get(moves_of(elder), role="street", region=B)).status_code == 200


async def test_an_org_moves_its_elder_only_inside_its_service_area(registry):
    org, other = await make_org(registry), await make_org(registry)
    elder = await make_elder(registry)
    await make_bed(registry, elder, org)
    as_org = {"role": "org_admin", "org": org["id"]}
    day = str(clock.today() - timedelta(days=5))
    r = await registry.post(moves_of(elder), {"residence_region": B, "moved_on": day}, **as_org)
    assert r.status_code == 403, r.text
    r = await registry.post(
        moves_of(elder), {"residence_region": "350212101", "moved_on": day}, **as_org
    )
    assert r.status_code == 201, r.text
    assert r.json()["recorded_by"]
    # a hukou is the civil-affairs offices' to record, even inside the org's area
    r = await registry.post(
        moves_of(elder),
        {
            "residence_region": "350212104",
            "hukou_region": "350211",
            "moved_on": str(clock.today() - timedelta(days=3)),
        },
        headers={"Accept-Language": "en"},
        **as_org,
    )
    assert r.status_code == 403 and "hukou change" in r.json()["detail"], r.text
    # an org that does not serve the elder does not see it
    r = await registry.post(
        moves_of(elder),
        {"residence_region": "350212102", "moved_on": str(clock.today())},
        role="org_admin",
        org=other["id"],
    )
    assert r.status_code == 404
    # org roles date a move more than 31 days back only with a reason
    old = str(clock.today() - timedelta(days=60))
    r = await registry.post(
        moves_of(elder), {"residence_region": "350212103", "moved_on": old}, **as_org
    )
    assert r.status_code == 422 and fields_of(r) == {"reason"}
    r = await registry.post(
        moves_of(elder),
        {"residence_region": "350212103", "moved_on": old, "reason": "补录：街道迁居证明"},
        **as_org,
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("role", ["caregiver", "family", "service"])
async def test_roles_that_do_not_write_cases_may_not_record_moves(registry, role):
    org = await make_org(registry)
    elder = await make_elder(registry, level=None, caregiver=False)
    claims = {"org": org["id"], "staff": org["id"], "elder": elder["id"]}
    r = await registry.post(
        moves_of(elder), {"residence_region": "350203", "moved_on": "2025-01-01"}, role=role,
        **claims,
    )  # fmt: skip
    assert r.status_code == 403, r.text


async def test_a_retry_with_the_same_key_records_one_move(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    body = {"residence_region": "350203", "moved_on": "2025-02-01"}
    headers = {"Idempotency-Key": f"move-{elder['id']}"}
    first = await registry.post(moves_of(elder), body, headers=headers, sub="officer-1")
    again = await registry.post(moves_of(elder), body, headers=headers, sub="officer-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    items = (await registry.get(moves_of(elder))).json()["items"]
    assert [m["kind"] for m in items] == ["registered", "move"]
    other = await registry.post(
        moves_of(elder), {**body, "moved_on": "2025-02-02"}, headers=headers, sub="officer-1"
    )
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    # without a key, the same move again is a conflict naming the one recorded
    dup = await registry.post(moves_of(elder), body)
    assert dup.status_code == 409 and dup.json()["existing_id"] == first.json()["id"]
    assert dup.json()["type"].endswith("move-exists")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"residence_region": "350203", "moved_on": "2025/04/11"}, "moved_on"),
        ({"residence_region": "350203", "moved_on": "2025-4-11"}, "moved_on"),
        ({"residence_region": "350203", "moved_on": 1744329600}, "moved_on"),
        ({"residence_region": "350203", "moved_on": "2025-02-30"}, "moved_on"),
        ({"residence_region": "35020", "moved_on": "2025-04-11"}, "residence_region"),
        ({"residence_region": "3502031", "moved_on": "2025-04-11"}, "residence_region"),
        ({"residence_region": "35020a", "moved_on": "2025-04-11"}, "residence_region"),
        ({"residence_region": "999999", "moved_on": "2025-04-11"}, "residence_region"),
        (
            {"residence_region": "350203", "hukou_region": "350203101", "moved_on": "2025-04-11"},
            "hukou_region",
        ),
        ({"moved_on": "2025-04-11"}, "residence_region"),
        ({"residence_region": "350203"}, "moved_on"),
        ({"residence_region": "350203", "moved_on": "2025-04-11", "extra": 1}, "extra"),
        # before the birth date (1945-03-08 in the factory), far ahead, and no change at all
        ({"residence_region": "350203", "moved_on": "1940-01-01"}, "moved_on"),
        ({"residence_region": "350203", "moved_on": "2999-01-01"}, "moved_on"),
        ({"residence_region": A, "moved_on": "2025-04-11"}, "residence_region"),
    ],
)
async def test_bad_moves_are_422_naming_the_field(registry, body, field):
    elder = await make_elder(registry, level=None, caregiver=False)
    r = await registry.post(moves_of(elder), body)
    assert r.status_code == 422, r.text
    assert field in fields_of(r)
    assert (await registry.get(f"/v1/elders/{elder['id']}")).json()["residence_region"] == A


async def test_patching_the_residence_is_a_move_from_today(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    r = await registry.patch(f"/v1/elders/{elder['id']}", {"residence_region": "350203"})
    assert r.status_code == 200, r.text
    items = (await registry.get(moves_of(elder))).json()["items"]
    assert [(m["kind"], m["valid_from"], m["current"]) for m in items] == [
        ("registered", elder["birth_date"], False),
        ("move", str(clock.today()), True),
    ]
    # a second correction the same day corrects that move rather than adding another
    r = await registry.patch(f"/v1/elders/{elder['id']}", {"residence_region": "350206"})
    assert r.status_code == 200
    items = (await registry.get(moves_of(elder))).json()["items"]
    assert [m["residence_region"] for m in items] == [A, "350206"]


def test_birth_date_of_the_factory_elder():
    # the 422 case above relies on it
    from tests.factories import id_number

    assert id_number()[6:14] == date(1945, 3, 8).strftime("%Y%m%d")


async def test_a_move_recorded_by_mistake_is_withdrawn_and_later_rows_follow(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    wrong = await registry.post(
        moves_of(elder),
        {"residence_region": "350206", "hukou_region": B, "moved_on": "2025-03-01"},
    )
    assert wrong.status_code == 201, wrong.text
    later = await registry.post(
        moves_of(elder), {"residence_region": "350203", "moved_on": "2025-06-01"}
    )
    assert later.status_code == 201 and later.json()["hukou_region"] == B  # copied
    path = f"{moves_of(elder)}/{wrong.json()['id']}/withdraw"
    r = await registry.post(path, {}, headers={"Accept-Language": "en"})
    assert r.status_code == 422 and fields_of(r) == {"reason"}
    org = await make_org(registry)
    r = await registry.post(path, {"reason": "录入错误"}, role="org_admin", org=org["id"])
    assert r.status_code == 404  # an org not serving the elder does not even see it
    r = await registry.post(path, {"reason": "录入错误：户口未迁"})
    assert r.status_code == 200 and r.json()["valid_from"] == "2025-03-01", r.text
    items = (await registry.get(moves_of(elder))).json()["items"]
    assert [(m["valid_from"], m["hukou_region"], m["residence_region"]) for m in items] == [
        (elder["birth_date"], A, A),
        ("2025-06-01", A, "350203"),  # the hukou it copied goes back to what held before
    ]
    got = (await registry.get(f"/v1/elders/{elder['id']}")).json()
    assert (got["hukou_region"], got["residence_region"]) == (A, "350203")
    # withdrawn once; the registration row is no move to withdraw
    assert (await registry.post(path, {"reason": "again"})).status_code == 404
    first = items[0]["id"]
    r = await registry.post(f"{moves_of(elder)}/{first}/withdraw", {"reason": "x"})
    assert r.status_code == 404


async def test_an_org_does_not_withdraw_moves(registry):
    org = await make_org(registry)
    elder = await make_elder(registry)
    await make_bed(registry, elder, org)
    move = await registry.post(
        moves_of(elder), {"residence_region": "350212101", "moved_on": "2025-03-01"}
    )
    assert move.status_code == 201, move.text
    r = await registry.post(
        f"{moves_of(elder)}/{move.json()['id']}/withdraw",
        {"reason": "录入错误"},
        role="org_admin",
        org=org["id"],
    )
    assert r.status_code == 403, r.text
