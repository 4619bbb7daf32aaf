"""Every core request of DESIGN.md ("Core request fields"), sent with exactly the fields it
names, as a new client would: each must succeed with 201 and an `id`.

Also the words and shapes people actually send: an org's region from its credit code,
relations and staff roles in English or Chinese, certificates as plain names, and records a
district migrates from its spreadsheets (beds, assessments, categories since 2023)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from services.registry.vocabulary import words
from shared import clock
from shared.audit import AuditEntry
from shared.ids import credit_code_check_char
from tests.factories import credit_code, id_number
from tests.integration.builders import make_elder, make_org


def created(r) -> dict:
    assert r.status_code == 201, r.text
    uuid.UUID(r.json()["id"])
    return r.json()


def code(authority: str) -> str:
    """A valid credit code whose characters 3–8 are ``authority``."""
    body = f"91{authority}MA{uuid.uuid4().int % 10**7:07d}"
    return body + credit_code_check_char(body)


@pytest.fixture(scope="module")
async def world(registry) -> dict:
    org = await make_org(registry)
    return {"org": org}


async def test_elder_with_exactly_the_design_fields(registry):
    number = id_number(born=date(1950, 7, 1), female=False)
    elder = created(
        await registry.post(
            "/v1/elders",
            {
                "id_number": number,
                "name": "林阿伯",
                "phone": "13812345678",
                "hukou_region": "350212",
                "address": "同安区大同街道示范路 8 号",
                "lat": 24.73,
                "lon": 118.15,
                "zone": "urban",
                "living_arrangement": "couple",
            },
        )
    )
    assert elder["id_number_masked"] == number[:4] + "*" * 10 + number[-4:]
    assert (elder["birth_date"], elder["gender"]) == ("1950-07-01", "male")
    assert elder["age"] == clock.today().year - 1950 - (
        clock.today() < date(clock.today().year, 7, 1)
    )


async def test_assessment_with_level_or_scores(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    path = f"/v1/elders/{elder['id']}/assessments"
    today = str(clock.today())
    a = created(
        await registry.post(
            path, {"level": 2, "dementia": False, "assessed_on": today, "assessor": "第三方"}
        )
    )
    assert a["level"] == 2
    from services.registry.assessments.scale import scale

    scores = dict(scale().items)
    b = created(
        await registry.post(
            path, {"scores": scores, "dementia": True, "assessed_on": today, "assessor": "评估员"}
        )
    )
    assert (b["total"], b["base_level"], b["level"]) == (90, 0, 1)


async def test_category_with_exactly_the_design_fields(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    path = f"/v1/elders/{elder['id']}/categories"
    c = created(
        await registry.post(
            path,
            {
                "code": "disabled",
                "valid_from": "2024-01-01",
                "valid_to": None,
                "grade": 2,
                "receives_nursing_subsidy": True,
            },
        )
    )
    assert (c["code"], c["grade"], c["current"]) == ("disabled", 2, True)
    created(
        await registry.post(
            path,
            {
                "code": "subsistence_allowance",
                "valid_from": "2024-01-01",
                "valid_to": "2030-12-31",
                "grade": None,
                "receives_nursing_subsidy": False,
            },
        )
    )


async def test_family_caregiver_with_exactly_the_design_fields(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    c = created(
        await registry.post(
            f"/v1/elders/{elder['id']}/family-caregivers",
            {
                "name": "林女儿",
                "relation": "daughter",
                "phone": "13900001111",
                "lives_with": True,
                "trained_on": "2025-03-01",
            },
        )
    )
    assert c["relation"] == "child"


@pytest.mark.parametrize(
    ("word", "relation"),
    [
        ("son", "child"),
        ("Daughter", "child"),
        ("wife", "spouse"),
        ("husband", "spouse"),
        ("spouse", "spouse"),
        ("daughter-in-law", "child_in_law"),
        ("Son in law", "child_in_law"),
        ("grandson", "grandchild"),
        ("granddaughter", "grandchild"),
        ("brother", "sibling"),
        ("sister", "sibling"),
        ("niece", "relative"),
        ("nephew", "relative"),
        ("friend", "friend"),
        ("neighbour", "neighbour"),
        ("neighbor", "neighbour"),
        ("儿子", "child"),
        ("女儿", "child"),
        ("老伴", "spouse"),
        ("配偶", "spouse"),
        ("妻子", "spouse"),
        ("丈夫", "spouse"),
        ("儿媳", "child_in_law"),
        ("女婿", "child_in_law"),
        ("孙子", "grandchild"),
        ("孙女", "grandchild"),
        ("外孙", "grandchild"),
        ("兄弟", "sibling"),
        ("姐妹", "sibling"),
        ("侄子", "relative"),
        ("亲戚", "relative"),
        ("保姆", "domestic_helper"),
        ("child_in_law", "child_in_law"),  # the code itself
    ],
)
async def test_relation_words_map_to_the_enum(registry, word, relation):
    elder = await make_elder(registry, level=None, caregiver=False)
    body = {"name": "x", "relation": word, "phone": "13900000000", "lives_with": False}
    c = created(await registry.post(f"/v1/elders/{elder['id']}/family-caregivers", body))
    assert c["relation"] == relation
    listed = (await registry.get(f"/v1/elders/{elder['id']}/family-caregivers")).json()
    assert [x["relation"] for x in listed["items"]] == [relation]


async def test_unknown_relation_is_a_422_naming_it_in_both_languages(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    path = f"/v1/elders/{elder['id']}/family-caregivers"
    body = {"name": "x", "relation": "pilot", "phone": "13900000000", "lives_with": False}
    r = await registry.post(path, body)
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["field"] == "relation" and "无法识别" in error["message"]
    r = await registry.client.post(
        path, json=body, headers={**registry.auth(), "Accept-Language": "en"}
    )
    assert "not recognised" in r.json()["errors"][0]["message"]


async def test_openapi_lists_the_accepted_words_and_returns_enums(registry):
    spec = (await registry.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    described = schemas["FamilyCaregiverCreate"]["properties"]["relation"]["description"]
    for accepted in words("relation").values():
        assert all(w in described for w in accepted)
    assert "护理员" in schemas["StaffCreate"]["properties"]["role"]["description"]
    enum_of = {
        ("FamilyCaregiverRead", "relation"): {"spouse", "child", "domestic_helper", "other"},
        ("StaffRead", "role"): {"caregiver", "nurse", "doctor", "social_worker"},
        ("BedRead", "status"): {"applied", "active", "suspended", "terminated"},
        ("StationRead", "zone"): {"urban", "rural"},
        ("CategoryRead", "code"): {"disabled", "low_income"},
        ("ModificationRead", "kind"): {"aging_adaptation", "smart"},
        ("AssessmentRead", "level_name"): {"intact", "total"},
        ("ElderRead", "gender"): {"male", "female"},
    }
    for (model, field), some in enum_of.items():
        assert some <= set(schemas[model]["properties"][field]["enum"]), (model, field)


async def test_org_with_exactly_the_design_fields_takes_its_region_from_the_credit_code(registry):
    org = created(
        await registry.post(
            "/v1/orgs",
            {"name": "同安颐养", "credit_code": code("350212"), "medical_license": "PDY1"},
        )
    )
    assert org["region"] == "350212"
    explicit = created(
        await registry.post(
            "/v1/orgs",
            {"name": "跨区机构", "credit_code": code("350212"), "region": "350213001"},
        )
    )
    assert explicit["region"] == "350213001"  # an explicit region overrides


async def test_unknown_derived_region_is_a_422_on_region(registry):
    for lang, word in (("zh", "region"), ("en", "give region")):
        r = await registry.client.post(
            "/v1/orgs",
            json={"name": "X", "credit_code": code("999999")},
            headers={**registry.auth(), "Accept-Language": lang},
        )
        assert r.status_code == 422
        [error] = r.json()["errors"]
        assert (
            error["field"] == "region" and word in error["message"] and "999999" in error["message"]
        )
    # an explicit region makes the same credit code acceptable
    created(
        await registry.post(
            "/v1/orgs", {"name": "X", "credit_code": code("999999"), "region": "350212"}
        )
    )
    # a region-scoped admin may not register an org outside its region, derived or not
    r = await registry.post(
        "/v1/orgs", {"name": "Y", "credit_code": code("350213")}, role="admin", region="350212"
    )
    assert r.status_code == 403


async def test_station_and_staff_with_exactly_the_design_fields(registry):
    org = created(
        await registry.post(
            "/v1/orgs", {"name": "O", "credit_code": credit_code(), "medical_license": None}
        )
    )
    station = created(
        await registry.post(
            f"/v1/orgs/{org['id']}/stations",
            {"name": "大同站", "lat": 24.73, "lon": 118.15, "zone": "urban"},
        )
    )
    staff = created(
        await registry.post(
            f"/v1/orgs/{org['id']}/staff",
            {
                "name": "王护理",
                "role": "护理员",
                "phone": "13700000001",
                "station_id": station["id"],
                "certificates": ["养老护理员证"],
                "insured_until": str(clock.today() + timedelta(days=300)),
                "on_duty": True,
            },
        )
    )
    assert staff["role"] == "caregiver"
    assert staff["certificates"] == [{"kind": "养老护理员证", "number": None, "valid_until": None}]
    mixed = created(
        await registry.post(
            f"/v1/orgs/{org['id']}/staff",
            {
                "name": "李护士",
                "role": "Nurse",
                "phone": "13700000002",
                "station_id": station["id"],
                "certificates": ["护士执业证书", {"kind": "急救证", "number": "J-1"}],
                "insured_until": None,
                "on_duty": False,
            },
        )
    )
    assert mixed["role"] == "nurse"
    assert [c["kind"] for c in mixed["certificates"]] == ["护士执业证书", "急救证"]
    for word, role in (
        ("护士", "nurse"),
        ("医生", "doctor"),
        ("康复师", "therapist"),
        ("社工", "social_worker"),
        ("家政员", "housekeeper"),
        ("social worker", "social_worker"),
    ):
        r = await registry.post(
            f"/v1/orgs/{org['id']}/staff", {"name": "n", "role": word, "phone": "13700000003"}
        )
        assert created(r)["role"] == role, word
    r = await registry.post(
        f"/v1/orgs/{org['id']}/staff", {"name": "n", "role": "pilot", "phone": "13700000003"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "role"
    listed = (await registry.get(f"/v1/orgs/{org['id']}/staff", params={"role": "nurse"})).json()
    assert {s["name"] for s in listed["items"]} == {"李护士", "n"}


async def test_bed_modification_and_device_with_exactly_the_design_fields(registry, world):
    org = world["org"]
    elder = await make_elder(registry)
    bed = created(
        await registry.post(
            "/v1/beds",
            {
                "elder_id": elder["id"],
                "org_id": org["id"],
                "station_id": org["station"]["id"],
                "started_on": str(clock.today()),
            },
        )
    )
    assert bed["status"] == "active"
    created(
        await registry.post(
            f"/v1/beds/{bed['id']}/modifications",
            {
                "kind": "smart",
                "item": "紧急呼叫按钮",
                "cost_fen": 30000,
                "done_on": str(clock.today()),
            },
        )
    )
    gw = f"gw-{uuid.uuid4().hex[:8]}"
    created(
        await registry.post(
            "/v1/devices",
            {
                "device_id": gw,
                "gateway_id": gw,
                "kind": "gateway",
                "elder_id": elder["id"],
                "bed_id": bed["id"],
            },
        )
    )


async def historical_elder(registry, *, born: date = date(1945, 3, 8), **claims) -> dict:
    """An elder as a district migrates them: assessed in 2023, caregiver at home."""
    elder = await make_elder(
        registry,
        level=None,
        id_number=id_number(born=born),
        creator=claims or None,
    )
    r = await registry.post(
        f"/v1/elders/{elder['id']}/assessments",
        {"level": 2, "assessed_on": "2023-03-01", "assessor": "2023 年评估（纸质台账）"},
    )
    created(r)
    r = await registry.post(
        f"/v1/elders/{elder['id']}/assessments",
        {"level": 2, "assessed_on": str(clock.today() - timedelta(days=30)), "assessor": "复评"},
    )
    created(r)
    return elder


async def test_an_admin_records_a_bed_that_began_in_2023(registry, world):
    org = world["org"]
    elder = await historical_elder(registry)
    body = {"elder_id": elder["id"], "org_id": org["id"], "station_id": org["station"]["id"]}
    bed = created(await registry.post("/v1/beds", {**body, "started_on": "2023-05-01"}))
    assert (bed["status"], bed["started_on"], bed["applied_on"]) == (
        "active",
        "2023-05-01",
        "2023-05-01",
    )
    events = (await registry.get(f"/v1/beds/{bed['id']}/events")).json()["items"]
    assert [(e["to_status"], e["effective_on"]) for e in events] == [("active", "2023-05-01")]
    async with registry.app.state.sessionmaker() as session:
        audited = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.resource_id == uuid.UUID(bed["id"]))
            )
        ).all()
    assert [(a.action, a.fields) for a in audited] == [("backdate", ["started_on:2023-05-01"])]


async def test_eligibility_is_checked_on_the_historical_date(registry, world):
    org = world["org"]
    # 62 this year, 59 on 2023-05-01: the bed could not have begun then
    born = date(clock.today().year - 62, 1, 15)
    elder = await historical_elder(registry, born=born)
    body = {"elder_id": elder["id"], "org_id": org["id"], "station_id": org["station"]["id"]}
    r = await registry.post("/v1/beds", {**body, "started_on": "2023-05-01"})
    assert r.status_code == 422
    assert {x["code"] for x in r.json()["reasons"]} == {"under_age"}
    # before any assessment was in force: refused for that, not for being old
    r = await registry.post("/v1/beds", {**body, "started_on": "2023-02-01"})
    assert {x["code"] for x in r.json()["reasons"]} == {"under_age", "no_assessment"}


async def test_an_org_back_dates_only_with_a_reason_which_is_kept_and_audited(registry, world):
    org = world["org"]
    as_org = {"role": "org_admin", "org": org["id"]}
    elder = await historical_elder(registry, **as_org)
    body = {"elder_id": elder["id"], "org_id": org["id"], "station_id": org["station"]["id"]}
    # within the month, no reason needed (paperwork lags)
    recent = str(clock.today() - timedelta(days=20))
    r = await registry.post(
        "/v1/beds", {**body, "started_on": recent, "status": "applied"}, **as_org
    )
    assert created(r)["status"] == "applied"
    r = await registry.post(f"/v1/beds/{r.json()['id']}/terminate", {"reason": "录错"}, **as_org)
    assert r.status_code == 200
    # further back: not a bare refusal, the 422 names the reason it needs
    for lang, text in (("zh", "原因"), ("en", "say why")):
        r = await registry.client.post(
            "/v1/beds",
            json={**body, "started_on": "2023-05-01"},
            headers={**registry.auth(**as_org), "Accept-Language": lang},
        )
        assert r.status_code == 422
        assert [e["field"] for e in r.json()["errors"]] == ["backdate_reason"]
        assert text in r.json()["detail"]
    reason = "2023 年纸质台账补录"
    bed = created(
        await registry.post(
            "/v1/beds", {**body, "started_on": "2023-05-01", "backdate_reason": reason}, **as_org
        )
    )
    assert bed["backdate_reason"] == reason
    events = (await registry.get(f"/v1/beds/{bed['id']}/events", **as_org)).json()["items"]
    assert events[0]["reason"] == reason
    async with registry.app.state.sessionmaker() as session:
        audited = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.resource_id == uuid.UUID(bed["id"]))
            )
        ).all()
    assert [(a.action, a.actor_role, a.fields) for a in audited] == [
        ("backdate", "org_admin", ["started_on:2023-05-01"])
    ]


async def test_planning_far_ahead_is_refused_naming_the_field(registry, world):
    org = world["org"]
    elder = await make_elder(registry)
    r = await registry.post(
        "/v1/beds",
        {
            "elder_id": elder["id"],
            "org_id": org["id"],
            "station_id": org["station"]["id"],
            "started_on": str(clock.today() + timedelta(days=200)),
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "started_on"


async def test_assessments_and_categories_since_2023(registry):
    elder = await make_elder(registry, level=None, caregiver=False)
    a = created(
        await registry.post(
            f"/v1/elders/{elder['id']}/assessments",
            {"level": 3, "assessed_on": "2023-01-10", "assessor": "2023 年评估"},
        )
    )
    assert a["valid_until"] == "2024-01-10"
    c = created(
        await registry.post(
            f"/v1/elders/{elder['id']}/categories",
            {"code": "low_income", "valid_from": "2023-01-01", "valid_to": "2023-12-31"},
        )
    )
    assert c["current"] is False


async def test_a_date_no_bed_policy_covers_is_a_refusal_not_a_server_error(registry, world):
    org = world["org"]
    elder = await historical_elder(registry)
    r = await registry.post(
        "/v1/beds",
        {
            "elder_id": elder["id"],
            "org_id": org["id"],
            "station_id": org["station"]["id"],
            "started_on": "2019-06-01",  # before every shipped bed policy
        },
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["elder_id"]
    assert "2019-06-01" in r.json()["detail"]
