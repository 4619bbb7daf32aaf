"""GB/T 42195-2022 capability level: item scores → total → level, plus the standard's
adjustments. Pure functions over the item table in ``gbt42195.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import yaml
from dateutil.relativedelta import relativedelta

from shared.i18n import T

LEVEL_NAMES = {0: "intact", 1: "mild", 2: "moderate", 3: "severe", 4: "total"}
CARE_RISK_EVENTS_FOR_UPGRADE = 2  # 30 days: falls, choking, wandering off, self-harm


@dataclass(frozen=True)
class Scale:
    items: dict[str, int]  # item → max score
    domain_of: dict[str, str]
    thresholds: list[tuple[int, int]]  # (level, lower bound), best level first
    max_total: int
    validity_months: int


@cache
def scale() -> Scale:
    raw = yaml.safe_load((Path(__file__).with_name("gbt42195.yaml")).read_text())
    items: dict[str, int] = {}
    domain_of: dict[str, str] = {}
    for domain, entries in raw["domains"].items():
        for item, max_score in entries.items():
            items[item] = int(max_score)
            domain_of[item] = domain
    if sum(items.values()) != raw["max_total"]:
        raise ValueError("gbt42195.yaml: item maxima do not add up to max_total")
    thresholds = sorted(
        ((int(lv), int(lb)) for lv, lb in raw["levels"].items()), key=lambda t: -t[1]
    )
    return Scale(items, domain_of, thresholds, int(raw["max_total"]), int(raw["validity_months"]))


def validate_scores(scores: dict[str, int]) -> list[tuple[str, T]]:
    """Field errors for a score sheet: every item present, integer, within 0..max."""
    s = scale()
    errors = []
    for item, max_score in s.items.items():
        value = scores.get(item)
        if value is None:
            errors.append((f"scores.{item}", T("缺少该项评分", "missing")))
        elif isinstance(value, bool) or not isinstance(value, int):
            errors.append((f"scores.{item}", T("应为整数", "must be an integer")))
        elif not 0 <= value <= max_score:
            errors.append(
                (
                    f"scores.{item}",
                    T(f"应在 0 到 {max_score} 之间", f"must be between 0 and {max_score}"),
                )
            )
    for item in scores:
        if item not in s.items:
            errors.append(
                (
                    f"scores.{item}",
                    T("不是 GB/T 42195-2022 的评估项", "not an item of GB/T 42195-2022"),
                )
            )
    return errors


def level_for_total(total: int) -> int:
    s = scale()
    if not 0 <= total <= s.max_total:
        raise ValueError(f"total must be between 0 and {s.max_total}")
    for level, lower in s.thresholds:
        if total >= lower:
            return level
    raise AssertionError("thresholds must cover 0")


@dataclass(frozen=True)
class Outcome:
    total: int | None
    base_level: int
    level: int
    adjustments: list[str]


def assess(
    *,
    scores: dict[str, int] | None = None,
    level: int | None = None,
    dementia: bool = False,
    coma: bool = False,
    care_risk_events_30d: int = 0,
) -> Outcome:
    """Final level from a score sheet, or from a level a third-party report states.

    Adjustments (GB/T 42195-2022): coma → level 4; diagnosed dementia, or at least two
    care-risk events in the last 30 days → one level worse (at most 4).
    A level entered from a report is taken as already adjusted by its assessor, except coma.
    """
    if (scores is None) == (level is None):
        raise ValueError("give either scores or level")
    if scores is not None:
        total = sum(scores.values())
        base = level_for_total(total)
        adjusted, notes = base, []
        if coma:
            adjusted, notes = 4, ["coma"]
        else:
            if dementia:
                notes.append("dementia")
            if care_risk_events_30d >= CARE_RISK_EVENTS_FOR_UPGRADE:
                notes.append("care_risk_events")
            if notes:
                adjusted = min(4, base + 1)
        return Outcome(total, base, adjusted, notes)
    assert level is not None
    if not 0 <= level <= 4:
        raise ValueError("level must be between 0 and 4")
    if coma and level < 4:
        return Outcome(None, level, 4, ["coma"])
    return Outcome(None, level, level, [])


def valid_until(assessed_on: date) -> date:
    return assessed_on + relativedelta(months=scale().validity_months)
