"""Who may have a home care bed (家庭养老床位) — decided here, and only here.

``check`` is a pure function of the facts about an elder and the bed rules of the policy that
covers them (``shared/policies/*.yaml``). It returns every failed condition, not the first,
because a refusal notice must state all its reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.i18n import T
from shared.policy import BedRules

LEVEL_NAMES_ZH = {0: "能力完好", 1: "轻度失能", 2: "中度失能", 3: "重度失能", 4: "完全失能"}
LEVEL_NAMES_EN = {0: "intact", 1: "mild", 2: "moderate", 3: "severe", 4: "total"}


@dataclass(frozen=True)
class ElderFacts:
    age: int
    lives_at_home: bool
    living_arrangement: str
    deceased_on: date | None
    level: int | None
    level_valid_until: date | None
    has_coresident_caregiver: bool
    has_open_bed: bool


@dataclass(frozen=True)
class Reason:
    """A failed condition: ``code`` is a stable identifier for clients, ``message`` the text a
    refusal notice carries (zh-CN, or English on ``Accept-Language: en``)."""

    code: str
    message: T

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": str(self.message)}


def check(facts: ElderFacts, rules: BedRules, today: date) -> list[Reason]:
    reasons: list[Reason] = []
    if facts.deceased_on is not None and facts.deceased_on <= today:
        reasons.append(
            Reason("deceased", T("老人已登记为死亡", "the elder is recorded as deceased"))
        )
    if facts.age < rules.min_age:
        reasons.append(
            Reason(
                "under_age",
                T(
                    f"年龄 {facts.age} 岁：本政策服务 {rules.min_age} 周岁及以上老人",
                    f"aged {facts.age}: the policy serves elders aged {rules.min_age} and over",
                ),
            )
        )
    if rules.require_lives_at_home and not facts.lives_at_home:
        reasons.append(
            Reason(
                "not_living_at_home",
                T(
                    "家庭养老床位只服务居家生活的老人（居家养老）",
                    "a home care bed is for elders living at home (居家养老)",
                ),
            )
        )
    if facts.level is None:
        reasons.append(
            Reason(
                "no_assessment",
                T(
                    "没有老年人能力评估记录（GB/T 42195-2022），需先完成评估",
                    "no capability assessment (GB/T 42195-2022) on record; an assessment is "
                    "required",
                ),
            )
        )
    elif facts.level_valid_until is not None and facts.level_valid_until < today:
        reasons.append(
            Reason(
                "assessment_expired",
                T(
                    f"最近一次评估已于 {facts.level_valid_until} 过期，需重新评估",
                    f"the latest assessment expired on {facts.level_valid_until}; "
                    "re-assessment is due",
                ),
            )
        )
    elif facts.level < rules.min_level:
        level, minimum = facts.level, rules.min_level
        reasons.append(
            Reason(
                "level_below_minimum",
                T(
                    f"能力等级 {level}（{LEVEL_NAMES_ZH.get(level, '?')}）低于最低要求 "
                    f"{minimum}（{LEVEL_NAMES_ZH.get(minimum, '?')}）",
                    f"capability level {level} ({LEVEL_NAMES_EN.get(level, '?')}) is below "
                    f"the minimum {minimum} ({LEVEL_NAMES_EN.get(minimum, '?')})",
                ),
            )
        )
    if facts.living_arrangement in rules.refused_living_arrangements:
        reasons.append(
            Reason(
                "lives_alone",
                T(
                    "独居且无家庭照护者的老人不符合家庭养老床位条件，建议入住机构养老",
                    "elders living alone without a family caregiver are not eligible for a "
                    "home care bed; institutional care (入住机构养老) is recommended",
                ),
            )
        )
    if rules.require_coresident_caregiver and not facts.has_coresident_caregiver:
        reasons.append(
            Reason(
                "no_coresident_caregiver",
                T(
                    "需有共同生活的家庭照护者",
                    "a family caregiver living with the elder (共同生活的家庭照护者) is required",
                ),
            )
        )
    if facts.has_open_bed:
        reasons.append(
            Reason(
                "open_bed_exists",
                T(
                    "老人已有一张未终止的家庭养老床位",
                    "the elder already holds a bed that is not terminated",
                ),
            )
        )
    return reasons
