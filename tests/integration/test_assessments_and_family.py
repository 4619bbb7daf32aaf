from __future__ import annotations

from datetime import timedelta

from services.registry.assessments.scale import scale
from shared import clock
from tests.integration.builders import make_elder


def full_sheet(total_loss: int = 0) -> dict[str, int]:
    """A score sheet with ``total_loss`` points taken off the maximum."""
    sheet = dict(scale().items)
    for item in sheet:
        take = min(sheet[item], total_loss)
        sheet[item] -= take
        total_loss -= take
    return sheet


async def test_scores_give_level_and_latest_wins(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    path = f"/v1/elders/{elder['id']}/assessments"
    old = str(clock.today() - timedelta(days=200))
    r = await registry.post(
        path, {"scores": full_sheet(30), "assessed_on": old, "assessor": "评估员甲"}
    )
    assert r.status_code == 201, r.text
    assert (r.json()["total"], r.json()["level"], r.json()["level_name"]) == (60, 2, "moderate")
    newer = str(clock.today() - timedelta(days=5))
    r = await registry.post(
        path,
        {"scores": full_sheet(10), "dementia": True, "assessed_on": newer, "assessor": "评估员乙"},
    )
    assert (r.json()["base_level"], r.json()["level"]) == (1, 2)
    assert r.json()["adjustments"] == ["dementia"]
    # an older assessment recorded later does not override the newer one
    r = await registry.post(path, {"level": 4, "assessed_on": old, "assessor": "x"})
    assert r.status_code == 201
    elder_now = (await registry.get(f"/v1/elders/{elder['id']}")).json()
    assert elder_now["current_level"] == 2
    history = (await registry.get(path)).json()["items"]
    assert [a["assessed_on"] for a in history] == [newer, old, old]
    assert history[1]["level"] == 4  # the same day: the one recorded later first
    first = (await registry.get(path, params={"limit": 2})).json()
    rest = (await registry.get(path, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [a["id"] for a in first["items"] + rest["items"]] == [a["id"] for a in history]
    assert rest["next_cursor"] is None


async def test_coma_is_total_loss(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    r = await registry.post(
        f"/v1/elders/{elder['id']}/assessments",
        {"scores": full_sheet(0), "coma": True, "assessed_on": str(clock.today()), "assessor": "x"},
    )
    assert r.json()["level"] == 4 and r.json()["adjustments"] == ["coma"]


async def test_bad_assessments(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    path = f"/v1/elders/{elder['id']}/assessments"
    base = {"assessed_on": str(clock.today()), "assessor": "x"}
    cases = [
        ({"level": 5}, "level"),
        ({"level": "2"}, "level"),
        ({}, "body"),
        ({"level": 1, "scores": full_sheet()}, "body"),
        ({"scores": {**full_sheet(), "eating": 9}}, "scores.eating"),
        ({"scores": {k: v for k, v in full_sheet().items() if k != "memory"}}, "scores.memory"),
        ({"scores": {**full_sheet(), "flying": 1}}, "scores.flying"),
        ({"level": 1, "assessed_on": str(clock.today() + timedelta(days=1))}, "assessed_on"),
    ]
    for override, field in cases:
        r = await registry.post(path, {**base, **override})
        assert r.status_code == 422, (override, r.text)
        fields = {e["field"] for e in r.json()["errors"]}
        assert field in fields or (field == "body" and fields), (override, fields)


async def test_categories(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    path = f"/v1/elders/{elder['id']}/categories"
    r = await registry.post(
        path,
        {
            "code": "subsistence_allowance",
            "valid_from": "2024-01-01",
            "evidence_ref": "低保证 2024-001",
        },
    )
    assert r.status_code == 201 and r.json()["current"] is True
    r = await registry.post(path, {"code": "subsistence_allowance", "valid_from": "2025-01-01"})
    assert r.status_code == 409
    r = await registry.post(path, {"code": "disabled", "valid_from": "2024-01-01"})
    assert r.status_code == 422  # grade required
    r = await registry.post(
        path,
        {
            "code": "disabled",
            "valid_from": "2024-01-01",
            "grade": 2,
            "receives_nursing_subsidy": True,
        },
    )
    assert r.status_code == 201
    r = await registry.post(
        path, {"code": "low_income", "valid_from": "2024-05-01", "valid_to": "2024-01-01"}
    )
    assert r.status_code == 422
    listed = (await registry.get(path)).json()["items"]
    assert {c["code"] for c in listed} == {"subsistence_allowance", "disabled"}


async def test_category_filter_lists_exactly_the_elders_in_the_category(registry):
    region = "350203"  # 思明区 (other tests may register elders here too: compare ours only)
    disabled = await make_elder(registry, region=region, level=None, caregiver=False)
    others = [await make_elder(registry, region=region, level=None, caregiver=False) for _ in "ab"]
    for elder, body in (
        (disabled, {"code": "disabled", "valid_from": "2024-01-01", "grade": 2}),
        # the same code, but its period ended: not in the category today
        (
            others[0],
            {"code": "disabled", "valid_from": "2020-01-01", "valid_to": "2021-01-01", "grade": 1},
        ),
        (others[1], {"code": "low_income", "valid_from": "2024-01-01"}),
    ):
        r = await registry.post(f"/v1/elders/{elder['id']}/categories", body)
        assert r.status_code == 201, r.text
    ours = {disabled["id"], *(o["id"] for o in others)}

    async def listed(**params) -> set[str]:
        page = await registry.get("/v1/elders", params={"region": region, "limit": 200, **params})
        assert page.json()["next_cursor"] is None
        return {e["id"] for e in page.json()["items"]} & ours

    assert await listed() == ours  # without the filter, all three
    assert await listed(category="disabled") == {disabled["id"]}
    assert await listed(category="low_income") == {others[1]["id"]}


async def test_family_caregivers(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    path = f"/v1/elders/{elder['id']}/family-caregivers"
    r = await registry.post(
        path,
        {
            "name": "李儿子",
            "relation": "child",
            "phone": "+86 139 0000 1234",
            "lives_with": False,
            "trained_on": "2025-03-01",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["phone_masked"] == "139****1234"
    r = await registry.post(
        path, {"name": "x", "relation": "pilot", "phone": "1", "lives_with": "sometimes"}
    )
    assert r.status_code == 422
    assert {"relation", "phone", "lives_with"} <= {e["field"] for e in r.json()["errors"]}
