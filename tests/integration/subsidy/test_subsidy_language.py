"""Text for people from the subsidy service: zh-CN by default, English on
``Accept-Language: en``; codes and field names the same in both. And the reward refusal's
``reasons``: what the served OpenAPI document says a problem document is."""

from __future__ import annotations

import uuid

import jsonschema_rs
import pytest
from pydantic import ValidationError

from services.subsidy.policies.schemas import PolicyCreate
from services.subsidy.runs.worker import NOTE_VISITS_UNAVAILABLE, note_text
from shared.errors import error_message
from shared.i18n import text
from tests.integration.subsidy_helpers import ensure_org

EN = {"Accept-Language": "en"}
MONTH_ZH = "应为 YYYY-MM 格式的月份（2000–2099 年）"
MONTH_EN = "must be a month, YYYY-MM (years 2000–2099)"


async def both(subsidy, path: str, body: dict) -> tuple[dict, dict]:
    """The same POST without and with ``Accept-Language: en``: (zh answer, en answer)."""
    zh = await subsidy.post(path, body)
    en = await subsidy.post(path, body, headers=EN)
    assert zh.status_code == en.status_code == 422, (zh.text, en.text)
    for r in (zh, en):
        assert r.headers["content-type"].startswith("application/problem+json")
    return zh.json(), en.json()


def fields(problem: dict) -> dict[str, str]:
    return {e["field"]: e["message"] for e in problem["errors"]}


async def test_a_refused_reward_lists_its_reasons_as_the_schema_says(subsidy, db):
    org = uuid.uuid4()
    await ensure_org(db, org)
    query = {"org_id": str(org), "as_of": "2024-06-30", "satisfaction_pct": 90}
    zh, en = await both(subsidy, "/v1/rewards", query)
    assert zh["type"] == en["type"] == "https://eldercare.dev/problems/reward-not-reached"
    assert zh["policy_code"] == "xm-tongan-org-reward"
    # every unmet condition of every tier, coded; the text in the asker's language
    codes = [(r["code"], r["tier"]) for r in zh["reasons"]]
    assert codes == [(r["code"], r["tier"]) for r in en["reasons"]]
    assert ("too_few_operating_beds", "beds_80") in codes
    assert ("satisfaction_too_low", "beds_80") in codes
    zh_text = {(r["code"], r["tier"]): r["message"] for r in zh["reasons"]}
    en_text = {(r["code"], r["tier"]): r["message"] for r in en["reasons"]}
    assert "实际运营床位 0 张" in zh_text[("too_few_operating_beds", "beds_80")]
    assert "0 operating beds" in en_text[("too_few_operating_beds", "beds_80")]
    assert "满意率 90%" in zh_text[("satisfaction_too_low", "beds_80")]
    assert "satisfaction 90% is below" in en_text[("satisfaction_too_low", "beds_80")]
    assert (zh["title"], en["title"]) == ("未达到奖励条件", "Reward not reached")
    assert (zh["detail"], en["detail"]) == ("未达到奖励条件", "the reward's conditions are not met")
    # what a generated client validates the 422 against
    spec = (await subsidy.client.get("/openapi.json")).json()
    documented = spec["paths"]["/v1/rewards"]["post"]["responses"]["422"]["content"]
    ref = documented["application/problem+json"]["schema"]["$ref"]
    validator = jsonschema_rs.validator_for(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": ref,
            "components": spec["components"],
        }
    )
    for body in (zh, en):
        errors = [e.message for e in validator.iter_errors(body)]
        assert errors == [], errors
    assert not validator.is_valid({**zh, "reasons": [r["message"] for r in zh["reasons"]]})
    # the evaluation answers the same reasons
    ev = await subsidy.post("/v1/rewards/evaluations", query, headers=EN)
    assert ev.status_code == 200 and ev.json()["reasons"] == en["reasons"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/evaluations", {"elder_id": str(uuid.uuid4()), "month": "2024-13"}),
        ("/v1/runs", {"month": "2024-6"}),
        ("/v1/vouchers/lapse", {"month": "June"}),
        ("/v1/runs", {"month": "0000-01"}),  # no such month: never a server error
        ("/v1/vouchers/lapse", {"month": "9999-12"}),
    ],
)
async def test_a_month_that_is_not_yyyy_mm_is_named_in_both_languages(subsidy, path, body):
    zh, en = await both(subsidy, path, body)
    assert fields(zh) == {"month": MONTH_ZH}
    assert fields(en) == {"month": MONTH_EN}


async def test_a_month_in_the_path_is_named_in_both_languages(subsidy):
    zh, en = await both(subsidy, "/v1/ledger/periods/2024-13/close", {})
    assert fields(zh) == {"month": MONTH_ZH}
    assert fields(en) == {"month": MONTH_EN}
    assert (zh["detail"], en["detail"]) == ("month 应为 YYYY-MM", "month must be YYYY-MM")


async def test_days_and_quarters_outside_2000_to_2099_are_named_in_both_languages(subsidy):
    org = str(uuid.uuid4())
    zh, en = await both(
        subsidy, "/v1/rewards", {"org_id": org, "as_of": "0001-01-01", "satisfaction_pct": 99}
    )
    assert fields(zh) == {"as_of": "应为 2000–2099 年间的日期"}
    assert fields(en) == {"as_of": "must be a date in 2000–2099"}
    zh, en = await both(subsidy, "/v1/settlements", {"quarter": "0000Q1", "org_id": org})
    assert list(fields(zh)) == list(fields(en)) == ["quarter"]
    listed = await subsidy.get("/v1/settlements", params={"quarter": "9999Q4"})
    assert listed.status_code == 422 and list(fields(listed.json())) == ["quarter"]


async def test_a_fraud_flag_names_the_subject_field_it_lacks_or_should_not_have(subsidy):
    flag = {"reason": "虚报服务", "found_on": "2024-05-01"}
    zh, en = await both(subsidy, "/v1/fraud-flags", {**flag, "subject": "elder"})
    assert fields(zh) == {"elder_id": "subject 为 elder 时必填"}
    assert fields(en) == {"elder_id": "required when subject is elder"}
    both_ids = {"elder_id": str(uuid.uuid4()), "org_id": str(uuid.uuid4())}
    zh, en = await both(subsidy, "/v1/fraud-flags", {**flag, "subject": "org", **both_ids})
    assert set(fields(zh)) == set(fields(en)) == {"elder_id"}
    assert fields(zh)["elder_id"].startswith("subject 为 org 时不应填写")
    assert fields(en)["elder_id"] == "must be left out when subject is org (give org_id only)"
    owes = {**flag, "subject": "org", "org_id": str(uuid.uuid4()), "repay_fen": 100}
    zh, en = await both(subsidy, "/v1/fraud-flags", owes)
    assert fields(zh) == {"fund": "有应还金额时须注明偿还的资金"}
    assert fields(en) == {"fund": "a repayment needs the fund it is owed to"}


async def test_a_refusal_without_written_reasons_is_named_in_both_languages(subsidy):
    path = f"/v1/applications/{uuid.uuid4()}/decisions"
    zh, en = await both(subsidy, path, {"decision": "refuse", "reasons": [" "]})
    assert fields(zh) == {"reasons": "不予批准须书面说明理由"}
    assert fields(en) == {"reasons": "a refusal must state its reasons in writing (书面说明理由)"}


async def test_not_found_and_refusals_follow_accept_language(subsidy):
    missing = f"/v1/runs/{uuid.uuid4()}"
    zh = await subsidy.get(missing)
    en = await subsidy.client.get(missing, headers={**subsidy.auth(), **EN})
    assert zh.status_code == en.status_code == 404
    assert zh.json()["detail"].startswith("未找到运行") and zh.json()["title"] == "未找到"
    assert en.json()["detail"].startswith("run ") and en.json()["title"] == "Not found"


async def test_a_policy_reads_in_the_askers_language(subsidy):
    path = "/v1/policies/sz-songgang-home-care/versions/1"
    zh = (await subsidy.get(path)).json()
    en = (await subsidy.client.get(path, headers={**subsidy.auth(), **EN})).json()
    assert (zh["title"], en["title"]) == (
        "松岗街道社区居家养老服务补助",
        "Songgang street home care service subsidy",
    )
    assert [r["id"] for r in zh["rules"]] == [r["id"] for r in en["rules"]]
    names = {r["id"]: (r["name"], e["name"]) for r, e in zip(zh["rules"], en["rules"], strict=True)}
    assert names["age80"] == ("80岁以上老人", "elders aged 80 and over")
    assert [b["field"] for b in zh["blanks"]] == [b["field"] for b in en["blanks"]]
    assert zh["blanks"] and all(
        z["message"] != e["message"] for z, e in zip(zh["blanks"], en["blanks"], strict=True)
    )


def test_run_notes_are_codes_read_in_the_readers_language():
    assert note_text(NOTE_VISITS_UNAVAILABLE, "zh").startswith("调度服务的核验上门记录")
    assert note_text(NOTE_VISITS_UNAVAILABLE, "en").startswith("dispatch.verified_visits is not")
    legacy = "dispatch.verified_visits is not there yet: per-visit lines are empty"
    assert note_text(legacy, "zh") == legacy  # written before notes were codes


def test_a_nul_deep_in_a_policy_document_is_refused_in_both_languages():
    with pytest.raises(ValidationError) as caught:
        PolicyCreate.model_validate(
            {"code": "x-1", "version": 1, "title": "t", "rules": [{"id": "a\x00"}]}
        )
    [err] = caught.value.errors()
    message = error_message(err)
    assert text(message, "zh") == "document.rules[0].id：不允许 NUL 字符"
    assert text(message, "en") == "document.rules[0].id: NUL characters are not allowed"
