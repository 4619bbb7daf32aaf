"""Who may have a home care bed (家庭养老床位) — decided here, and only here.

``check`` is a pure function of the facts about an elder and the bed rules of the policy that
covers them (``shared/policies/*.yaml``). It returns every failed condition, not the first,
because a refusal notice must state all its reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.policy import BedRules

LEVEL_NAMES_ZH = {0: "能力完好", 1: "轻度失能", 2: "中度失能", 3: "重度失能", 4: "完全失能"}


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
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def check(facts: ElderFacts, rules: BedRules, today: date) -> list[Reason]:
    reasons: list[Reason] = []
    if facts.deceased_on is not None and facts.deceased_on <= today:
        reasons.append(Reason("deceased", "the elder is recorded as deceased"))
    if facts.age < rules.min_age:
        reasons.append(
            Reason(
                "under_age",
                f"aged {facts.age}: the policy serves elders aged {rules.min_age} and over",
            )
        )
    if rules.require_lives_at_home and not facts.lives_at_home:
        reasons.append(
            Reason("not_living_at_home", "a home care bed is for elders living at home (居家养老)")
        )
    if facts.level is None:
        reasons.append(
            Reason(
                "no_assessment",
                "no capability assessment (GB/T 42195-2022) on record; an assessment is required",
            )
        )
    elif facts.level_valid_until is not None and facts.level_valid_until < today:
        reasons.append(
            Reason(
                "assessment_expired",
                f"the latest assessment expired on {facts.level_valid_until}; re-assessment is due",
            )
        )
    elif facts.level < rules.min_level:
        reasons.append(
            Reason(
                "level_below_minimum",
                f"capability level {facts.level} ({LEVEL_NAMES_ZH.get(facts.level, '?')}) is below "
                f"the minimum {rules.min_level} ({LEVEL_NAMES_ZH.get(rules.min_level, '?')})",
            )
        )
    if facts.living_arrangement in rules.refused_living_arrangements:
        reasons.append(
            Reason(
                "lives_alone",
                "elders living alone without a family caregiver are not eligible for a home care "
                "bed; institutional care (入住机构养老) is recommended",
            )
        )
    if rules.require_coresident_caregiver and not facts.has_coresident_caregiver:
        reasons.append(
            Reason(
                "no_coresident_caregiver",
                "a family caregiver living with the elder (共同生活的家庭照护者) is required",
            )
        )
    if facts.has_open_bed:
        reasons.append(
            Reason("open_bed_exists", "the elder already holds a bed that is not terminated")
        )
    return reasons
