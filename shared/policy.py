"""Versioned policy documents (YAML in ``shared/policies/``), selected by region and date.

Policy figures live in these files, never in code. The registry reads the ``bed`` section
(eligibility); the subsidy service loads whole documents into ``subsidy.policies``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml

POLICY_DIR = Path(__file__).with_name("policies")


@dataclass(frozen=True)
class BedRules:
    min_age: int
    min_level: int
    require_lives_at_home: bool
    require_coresident_caregiver: bool
    refused_living_arrangements: frozenset[str]
    modification_warranty_days: int


@dataclass(frozen=True)
class Policy:
    code: str
    version: int
    title: str
    regions: tuple[str, ...]
    valid_from: date
    valid_to: date | None
    bed: BedRules | None
    raw: dict[str, Any]

    def covers(self, region: str, day: date) -> bool:
        in_time = self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)
        return in_time and any(region.startswith(prefix) for prefix in self.regions)

    def specificity(self, region: str) -> int:
        return max((len(p) for p in self.regions if region.startswith(p)), default=-1)


def parse_policy(raw: dict[str, Any]) -> Policy:
    bed = raw.get("bed")
    return Policy(
        code=raw["code"],
        version=int(raw["version"]),
        title=raw["title"],
        regions=tuple(str(r) for r in raw["regions"]),
        valid_from=raw["valid_from"],
        valid_to=raw.get("valid_to"),
        bed=BedRules(
            min_age=int(bed["min_age"]),
            min_level=int(bed["min_level"]),
            require_lives_at_home=bool(bed["require_lives_at_home"]),
            require_coresident_caregiver=bool(bed["require_coresident_caregiver"]),
            refused_living_arrangements=frozenset(bed.get("refused_living_arrangements", [])),
            modification_warranty_days=int(bed["modification_warranty_days"]),
        )
        if bed
        else None,
        raw=raw,
    )


@cache
def load_policies(directory: Path = POLICY_DIR) -> tuple[Policy, ...]:
    return tuple(
        parse_policy(yaml.safe_load(p.read_text())) for p in sorted(directory.glob("*.yaml"))
    )


def bed_policy_for(region: str, day: date) -> Policy:
    """The most specific policy with bed rules covering ``region`` on ``day``."""
    candidates = [p for p in load_policies() if p.bed is not None and p.covers(region, day)]
    if not candidates:
        raise LookupError(f"no family-bed policy covers region {region} on {day}")
    return max(candidates, key=lambda p: (p.specificity(region), p.valid_from, p.version))


def policy_by_code(code: str) -> Policy:
    for policy in load_policies():
        if policy.code == code:
            return policy
    raise LookupError(f"policy {code} is not shipped")
