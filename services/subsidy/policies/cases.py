"""Test-case tables shipped beside each policy (``shared/policies/<code>.cases.yaml``).

A table names its policy (and version, or the one in force for each case's month), optionally
a ``patch`` merged into the document the way an admin completes a draft (a region, the blank
amounts), and cases worked by hand from the seed: an elder's facts, a month, the lines and the
total expected. ``run_table`` evaluates them with the pure engine (``eldercare policy test``);
the integration suite writes the same facts into a real database and asks the API.

Amounts in tables are yuan strings ("177.42"): what a person checks against the seed.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from services.subsidy.policies import engine
from services.subsidy.policies.document import PolicyDoc, parse_document
from services.subsidy.policies.facts import (
    Application,
    Assessment,
    Bed,
    Benefit,
    Category,
    ElderFacts,
    Grant,
    Modification,
    Move,
    Span,
    Visit,
)
from shared.money import fen_to_yuan, yuan_to_fen
from shared.policy import POLICY_DIR, case_files, policy_files


def parse_month(value: Any) -> date:
    if isinstance(value, date):
        return value.replace(day=1)
    text = str(value)
    year, month = text.split("-")[:2]
    return date(int(year), int(month), 1)


def merge(base: Any, patch: Any) -> Any:
    """``patch`` merged into ``base``: mappings recursively, rules by ``id``."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base.get(k), v) if k in base else v
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(x, dict) and "id" in x for x in (*base, *patch))
    ):
        by_id = {x["id"]: x for x in base}
        for x in patch:
            by_id[x["id"]] = merge(by_id.get(x["id"], {}), x)
        return list(by_id.values())
    return copy.deepcopy(patch)


def documents(directory: Path = POLICY_DIR) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in policy_files(directory)]


def pick(docs: Iterable[Mapping[str, Any]], code: str, version: int | None, month: date) -> dict:
    """The version named, else the one in force on the month's first day (else the first
    starting within it)."""
    versions = [d for d in docs if d["code"] == code]
    if version is not None:
        return next(dict(d) for d in versions if int(d["version"]) == version)
    _, last, _ = engine.month_bounds(month)
    started = [
        d for d in versions if d["valid_from"] <= month and (d.get("valid_to") or date.max) >= month
    ]
    if started:
        return dict(max(started, key=lambda d: (d["valid_from"], d["version"])))
    later = [d for d in versions if month < d["valid_from"] <= last]
    return dict(min(later, key=lambda d: (d["valid_from"], d["version"])))


@dataclass
class Orgs:
    """Symbolic org names in a table ('A', 'B') → stable ids."""

    ids: dict[str, uuid.UUID] = field(default_factory=dict)

    def __call__(self, name: Any) -> uuid.UUID:
        key = str(name or "A")
        if key not in self.ids:
            self.ids[key] = uuid.uuid5(uuid.NAMESPACE_URL, f"eldercare-case-org:{key}")
        return self.ids[key]


def facts_from_case(case: Mapping[str, Any], policy_code: str, orgs: Orgs) -> ElderFacts:
    e = case.get("elder") or {}
    elder_id = uuid.uuid5(uuid.NAMESPACE_URL, f"eldercare-case:{policy_code}:{case['name']}")
    beds = []
    for i, b in enumerate(e.get("beds") or []):
        spans = _bed_spans(b)
        beds.append(Bed(uuid.uuid5(elder_id, f"bed{i}"), orgs(b.get("org")), spans, policy_code))
    first_bed = beds[0].bed_id if beds else uuid.uuid5(elder_id, "bed0")
    moves = _moves(e)
    return ElderFacts(
        elder_id=elder_id,
        birth_date=e["birth_date"],
        # what the registry shows today: after the last move
        hukou_region=moves[-1].hukou_region if moves else _hukou(e),
        residence_region=moves[-1].residence_region if moves else _residence(e),
        living_arrangement=e.get("living_arrangement", "with_family"),
        lives_at_home=e.get("lives_at_home", True),
        deceased_on=e.get("deceased_on"),
        categories=tuple(
            Category(
                c["code"],
                c.get("valid_from", date(2000, 1, 1)),
                c.get("valid_to"),
                c.get("grade"),
                bool(c.get("receives_nursing_subsidy", False)),
            )
            for c in e.get("categories") or []
        ),
        assessments=tuple(
            Assessment(
                a["level"],
                a["assessed_on"],
                a.get("valid_until", a["assessed_on"] + timedelta(days=365 * 2)),
                bool(a.get("dementia", False)),
            )
            for a in e.get("assessments") or []
        ),
        beds=tuple(beds),
        modifications=tuple(
            Modification(first_bed, m["kind"], yuan_to_fen(str(m["cost"])), m["done_on"])
            for m in e.get("modifications") or []
        ),
        benefits=tuple(
            Benefit(b["code"], yuan_to_fen(str(b["amount"])), b["received_on"])
            for b in e.get("benefits") or []
        ),
        applications=tuple(
            Application(a.get("policy_code", policy_code), a["approved_on"], a.get("ends_on"))
            for a in e.get("applications") or []
        ),
        visits=tuple(
            Visit(
                uuid.uuid5(elder_id, f"visit{i}"),
                orgs(v.get("org")),
                v["day"],
                tuple(v.get("items") or ()),
            )
            for i, v in enumerate(_visits(e.get("visits") or []))
        ),
        grants=tuple(
            Grant(policy_code, g["rule"], parse_month(g["month"]), yuan_to_fen(str(g["amount"])))
            for g in e.get("grants") or []
        ),
        disqualified_on=e.get("disqualified_on"),
        moves=moves,
    )


def _hukou(e: Mapping[str, Any]) -> str:
    return str(e.get("hukou_region", "350212"))


def _residence(e: Mapping[str, Any]) -> str:
    return str(e.get("residence_region", _hukou(e)))


def _moves(e: Mapping[str, Any]) -> tuple[Move, ...]:
    """``moves: [{moved_on, residence_region, hukou_region?}, …]``: the elder's
    ``hukou_region``/``residence_region`` are where they lived before the first move (from
    birth); each move holds from its day, its hukou unchanged unless given."""
    items = sorted(e.get("moves") or [], key=lambda m: m["moved_on"])
    if not items:
        return ()
    out = [Move(e["birth_date"], _hukou(e), _residence(e))]
    for m in items:
        out.append(
            Move(
                m["moved_on"],
                str(m.get("hukou_region", out[-1].hukou_region)),
                str(m["residence_region"]),
            )
        )
    return tuple(out)


def _bed_spans(b: Mapping[str, Any]) -> tuple[Span, ...]:
    """A bed's active days: started_on … ended_on, less any suspensions [[from, to], …]."""
    start: date = b["started_on"]
    end: date | None = b.get("ended_on")
    spans = []
    for pause_from, resume_on in b.get("suspended") or []:
        spans.append(Span(start, pause_from - timedelta(days=1)))
        start = resume_on
    spans.append(Span(start, end))
    return tuple(spans)


def _visits(items: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for v in items:
        for k in range(int(v.get("count", 1))):
            out.append({**v, "day": v["day"] + timedelta(days=k * int(v.get("every", 1)))})
    return out


@dataclass
class CaseResult:
    name: str
    month: date
    ok: bool
    problems: list[str]
    evaluation: engine.Evaluation


def check(case: Mapping[str, Any], evaluation: engine.Evaluation) -> list[str]:
    """What differs between a case's expectations and an evaluation (empty: it passed)."""
    expect = case.get("expect") or {}
    got = {line.rule: line.amount_fen for line in evaluation.lines}
    want = {rule: yuan_to_fen(str(v)) for rule, v in (expect.get("lines") or {}).items()}
    problems = []
    if got != want:
        problems.append(
            "lines: expected "
            + ", ".join(f"{r}={fen_to_yuan(v)}" for r, v in sorted(want.items()))
            + " got "
            + ", ".join(f"{r}={fen_to_yuan(v)}" for r, v in sorted(got.items()))
        )
    if "total" in expect and yuan_to_fen(str(expect["total"])) != evaluation.total_fen:
        problems.append(
            f"total: expected {expect['total']} got {fen_to_yuan(evaluation.total_fen)}"
        )
    refused = {r.rule: r.code for r in evaluation.refused}
    for rule, code in (expect.get("refused") or {}).items():
        if refused.get(rule) != code:
            problems.append(f"refused[{rule}]: expected {code} got {refused.get(rule, 'granted')}")
    return problems


def table_documents(table: Mapping[str, Any], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's policy versions, with its patch applied (drafts completed as an admin would)."""
    code = table["policy"]
    patch = table.get("patch") or {}
    return [merge(d, patch) if patch else d for d in docs if d["code"] == code]


def run_table(
    table: Mapping[str, Any], docs: list[dict[str, Any]] | None = None
) -> list[CaseResult]:
    docs = docs if docs is not None else documents()
    versions = table_documents(table, docs)
    parsed: dict[int, PolicyDoc] = {}
    orgs = Orgs()
    results = []
    for case in table.get("cases") or []:
        month = parse_month(case["month"])
        raw = pick(versions, table["policy"], table.get("version"), month)
        version = int(raw["version"])
        if version not in parsed:
            parsed[version] = parse_document(raw)
        facts = facts_from_case(case, table["policy"], orgs)
        barred = {orgs(k): v for k, v in (case.get("barred_orgs") or {}).items()}
        ev = engine.evaluate(parsed[version], facts, month, barred_orgs=barred)
        problems = check(case, ev)
        results.append(CaseResult(case["name"], month, not problems, problems, ev))
    return results


def load_tables(directory: Path = POLICY_DIR) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, yaml.safe_load(p.read_text(encoding="utf-8"))) for p in case_files(directory)]
