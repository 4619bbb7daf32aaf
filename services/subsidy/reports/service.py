"""Reports beyond the month's payments.

- **应补尽补 — missed entitlements** (篇七: “既要应补尽补，又要防止虚报、瞒报”): per community,
  elders whose facts qualify them for a line they do not receive, with the missing step —
  no bed (only where the elder could have one under the policy's bed rules), no approved
  application, an overdue re-assessment — and lines about to stop because a category or an
  assessment runs out within the next two months.
- **Budget what-if**: a draft policy version against today's population for a year, month by
  month and by fund, beside the version in force; who gains and who loses.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.facts import service as facts_service
from services.subsidy.policies import engine
from services.subsidy.policies import service as policies
from services.subsidy.policies.document import PolicyDoc, parse_document
from services.subsidy.policies.facts import ElderFacts, Grant, day_facts
from services.subsidy.policies.predicates import STEP_BED, PolicyInvalid
from shared.auth import Principal
from shared.errors import Forbidden, Unprocessable
from shared.i18n import T, text
from shared.policy import BedRules, parse_policy
from shared.regions import region_name

HORIZON = timedelta(days=61)


def _scope_region(principal: Principal, region: str | None) -> str | None:
    if region and principal.region and not region.startswith(principal.region):
        raise Forbidden(T("超出您的管辖范围", "outside your region"))
    return region or principal.region


def _bed_possible(rules: BedRules | None, f: ElderFacts, day: date) -> bool:
    if rules is None:
        return False
    d = day_facts(f, day)
    return (
        d.age >= rules.min_age
        and d.level is not None
        and d.level >= rules.min_level
        and (d.at_home or not rules.require_lives_at_home)
        and d.arrangement not in rules.refused_living_arrangements
        and d.bed is None
    )


async def missed_entitlements(
    *, session: AsyncSession, principal: Principal, month: date, region: str | None
) -> dict[str, Any]:
    first, last, _ = engine.month_bounds(month)
    scope = _scope_region(principal, region)
    conn = await facts_service.raw_connection(session)
    world = await facts_service.load(
        conn, facts_service.Scope(region=scope), start=first, end=last + HORIZON
    )
    versions = await policies.in_force(session, month=first)
    bed_rules = {v.doc.code: parse_policy(dict(v.doc.raw)).bed for v in versions}
    communities: dict[str, list[dict]] = defaultdict(list)
    for f in world.elders:
        for v in versions:
            doc = v.doc
            if not any(f.hukou_region.startswith(p) for p in doc.regions):
                continue
            ev = engine.evaluate(doc, f, first, barred_orgs=world.barred_orgs)
            for r in ev.refused:
                steps = list(r.steps)
                if STEP_BED in steps and not _bed_possible(bed_rules.get(doc.code), f, last):
                    continue  # no bed to open: not an entitlement missed
                if steps:
                    communities[f.residence_region].append(
                        _row(f, doc, r.rule, steps, text(r.reason) or r.code, None)
                    )
            for line in ev.lines:
                warning = _expiring(doc, f, line.rule, last)
                if warning:
                    step, on = warning
                    communities[f.residence_region].append(
                        _row(f, doc, line.rule, [step], _expiry_text(step, on), on)
                    )
    return {
        "month": f"{first.year:04d}-{first.month:02d}",
        "region": scope,
        "communities": [
            {"region": code, "name": region_name(code), "count": len(rows), "elders": rows}
            for code, rows in sorted(communities.items())
        ],
        "total": sum(len(rows) for rows in communities.values()),
    }


def _row(
    f: ElderFacts, doc: PolicyDoc, rule: str, steps: list[str], reason: str, due: date | None
) -> dict:
    return {
        "elder_id": str(f.elder_id),
        "name": f.name,
        "policy_code": doc.code,
        "rule": rule,
        "missing": steps,
        "reason": reason,
        "due_on": str(due) if due else None,
    }


def _expiring(doc: PolicyDoc, f: ElderFacts, rule_id: str, last: date) -> tuple[str, date] | None:
    """A granted line that stops within the horizon because a category or an assessment
    ends: the step is to renew it before then."""
    rule = doc.rule(rule_id)
    ends = [
        ("category_expiring", c.valid_to)
        for c in f.categories
        if c.valid_to and last <= c.valid_to < last + HORIZON
    ]
    ends += [
        ("reassessment_due", a.valid_until)
        for a in f.assessments
        if a.valid_until and last <= a.valid_until < last + HORIZON
    ]
    for step, end in sorted(ends, key=lambda e: e[1]):
        if not rule.eligible.test(day_facts(f, end + timedelta(days=1))):
            return step, end
    return None


def _expiry_text(step: str, on: date) -> str:
    if step == "category_expiring":
        return (
            text(
                T(
                    f"类别认定将于 {on} 到期，需及时复核续期",
                    f"a category ends on {on}: renew it in time",
                )
            )
            or ""
        )
    return (
        text(
            T(
                f"能力评估将于 {on} 到期，需及时复评",
                f"the assessment expires on {on}: re-assess in time",
            )
        )
        or ""
    )


async def what_if(
    *,
    session: AsyncSession,
    principal: Principal,
    draft: Mapping[str, Any] | None,
    code: str | None,
    version: int | None,
    year: int,
    baseline_code: str | None,
    top: int = 20,
) -> dict[str, Any]:
    """Cost of a draft version for ``year`` over today's population in scope, by month and
    fund, beside the version in force, and who gains and loses."""
    if draft is not None:
        try:
            doc = parse_document(policies.parse_json(dict(draft)))
        except PolicyInvalid as exc:
            raise policies.invalid(exc) from None
    elif code is not None:
        doc = (await policies.get_version(session, code, version)).doc
    else:
        raise Unprocessable(
            T("需给出草案文档或策略代码", "give a draft document or a policy code"),
            errors=[("draft", T("必填其一", "one of draft, policy_code is required"))],
        )
    base_code = baseline_code or doc.code
    start, end = date(year, 1, 1), date(year, 12, 31)
    conn = await facts_service.raw_connection(session)
    world = await facts_service.load(
        conn, facts_service.Scope(region=principal.region), start=start, end=end, grants_from=start
    )
    months = [date(year, m, 1) for m in range(1, 13)]
    baselines: dict[date, PolicyDoc | None] = {}
    for m in months:
        found = await policies.in_force(session, month=m, code=base_code)
        baselines[m] = found[0].doc if found else None
    by_month = {m: {"draft": defaultdict(int), "baseline": defaultdict(int)} for m in months}
    per_elder: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    for f in world.elders:
        covered = any(f.hukou_region.startswith(p) for p in doc.regions) if doc.regions else True
        for side, pick in (
            ("draft", lambda _m, covered=covered: doc if covered else None),
            ("baseline", baselines.get),
        ):
            grants: list[Grant] = [g for g in f.grants if g.month < start]
            for m in months:
                d = pick(m)
                if d is None or not any(f.hukou_region.startswith(p) for p in (d.regions or ("",))):
                    continue
                ev = engine.evaluate(
                    d,
                    replace(f, grants=tuple(grants)),
                    m,
                    barred_orgs=world.barred_orgs,
                    explain=False,
                )
                for line in ev.lines:
                    by_month[m][side][line.fund] += line.amount_fen
                    if line.kind in ("one_time", "annual"):
                        grants.append(Grant(d.code, line.rule, m, line.amount_fen))
                per_elder[f.elder_id][0 if side == "draft" else 1] += ev.total_fen
    deltas = sorted(
        ((d - b, eid) for eid, (d, b) in per_elder.items() if d != b),
        key=lambda t: (t[0], str(t[1])),
    )
    names = {f.elder_id: f.name for f in world.elders}
    total_draft = sum(sum(v["draft"].values()) for v in by_month.values())
    total_base = sum(sum(v["baseline"].values()) for v in by_month.values())
    budget = doc.raw.get("budget_yuan")
    return {
        "policy_code": doc.code,
        "policy_version": doc.version,
        "policy_hash": doc.hash,
        "baseline_code": base_code,
        "year": year,
        "elders": len(world.elders),
        "months": [
            {
                "month": f"{m.year:04d}-{m.month:02d}",
                "draft_fen": sum(v["draft"].values()),
                "baseline_fen": sum(v["baseline"].values()),
                "by_fund": {
                    fund: {
                        "draft_fen": v["draft"].get(fund, 0),
                        "baseline_fen": v["baseline"].get(fund, 0),
                    }
                    for fund in sorted(set(v["draft"]) | set(v["baseline"]))
                },
            }
            for m, v in by_month.items()
        ],
        "total_draft_fen": total_draft,
        "total_baseline_fen": total_base,
        "budget_fen": int(budget) * 100 if isinstance(budget, int) else None,
        "gainers": sum(1 for d, _ in deltas if d > 0),
        "losers": sum(1 for d, _ in deltas if d < 0),
        "top_gainers": [
            {"elder_id": str(e), "name": names.get(e), "delta_fen": d}
            for d, e in reversed(deltas[-top:])
            if d > 0
        ],
        "top_losers": [
            {"elder_id": str(e), "name": names.get(e), "delta_fen": d}
            for d, e in deltas[:top]
            if d < 0
        ],
    }
