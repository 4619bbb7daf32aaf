"""Versioned policy documents (YAML in ``shared/policies/``), selected by region and date.

Policy figures live in these files, never in code. The registry reads the ``bed`` section
(eligibility) through ``bed_policy_for`` / ``policy_by_code``; the subsidy service parses the
whole document (rules, dated amounts, combinations — ``services/subsidy/policies/document.py``)
and keeps every version in ``subsidy.policy_versions``.

A file is one version of one policy. ``*.cases.yaml`` beside a policy are its test-case tables
(``eldercare policy test``), not policies. ``status: draft`` documents (the seeds' blank ``xx``
amounts, a region still to be chosen) are shipped for an admin to complete; they are never
selected for a bed or a payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml

POLICY_DIR = Path(__file__).with_name("policies")
CASES_SUFFIX = ".cases.yaml"


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
    status: str = "active"

    @property
    def active(self) -> bool:
        return self.status == "active"

    def covers(self, region: str, day: date) -> bool:
        in_time = self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)
        return in_time and any(region.startswith(prefix) for prefix in self.regions)

    def specificity(self, region: str) -> int:
        return max((len(p) for p in self.regions if region.startswith(p)), default=-1)


class NoPolicy(LookupError):
    """No active policy covers a region on a day (or no such code is shipped)."""


def parse_policy(raw: dict[str, Any]) -> Policy:
    bed = raw.get("bed")
    return Policy(
        code=raw["code"],
        version=int(raw["version"]),
        title=raw["title"],
        regions=tuple(str(r) for r in raw.get("regions") or ()),
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
        status=str(raw.get("status", "active")),
    )


def policy_files(directory: Path = POLICY_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if not p.name.endswith(CASES_SUFFIX))


def case_files(directory: Path = POLICY_DIR) -> list[Path]:
    return sorted(directory.glob(f"*{CASES_SUFFIX}"))


@cache
def load_policies(directory: Path = POLICY_DIR) -> tuple[Policy, ...]:
    return tuple(
        parse_policy(yaml.safe_load(p.read_text(encoding="utf-8"))) for p in policy_files(directory)
    )


def bed_policy_for(region: str, day: date) -> Policy:
    """The most specific active policy with bed rules covering ``region`` on ``day``.

    Raises ``NoPolicy`` (a ``LookupError``) where no local policy provides home care beds:
    a bed has no legal basis, and no subsidy, outside a district's own pilot."""
    candidates = [
        p for p in load_policies() if p.active and p.bed is not None and p.covers(region, day)
    ]
    if not candidates:
        raise NoPolicy(f"no family-bed policy covers region {region} on {day}")
    return max(candidates, key=lambda p: (p.specificity(region), p.valid_from, p.version))


def policy_by_code(code: str) -> Policy:
    """The latest shipped version of ``code`` (drafts only when nothing else exists)."""
    versions = [p for p in load_policies() if p.code == code]
    if not versions:
        raise NoPolicy(f"policy {code} is not shipped")
    return max(versions, key=lambda p: (p.active, p.version))
