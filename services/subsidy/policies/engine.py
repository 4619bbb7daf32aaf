"""Who gets how much for a month, and why — a pure function of a policy and an elder's facts.

``evaluate(doc, facts, month)`` splits the month into segments on which every fact the rules
read is constant (a birthday, a category ending, a bed starting, a death, a dated amount
changing …), tests each rule's predicate once per segment, and then applies the document's
declared combinations in a fixed order:

1. ``exclude … when`` removes the days on which the condition holds (e.g. the nursing
   subsidy on days the elder receives the disability nursing subsidy);
2. amounts: ``monthly`` (prorated by day, or whole), ``annual`` (once a year: the year's
   highest entitlement less what was granted earlier that year), ``per_visit`` (verified
   visits on eligible days), ``one_time`` (actual cost up to a cap, less earlier subsidies
   counted against it, less what was granted in earlier months);
3. ``cap`` binds a set of one-time items (later rules are reduced first);
4. ``highest`` keeps the single highest line of a group (就高不就低，不重复计算);
5. ``exclude … with_rule`` removes a line when another rule grants.

Rounding (stated once, used everywhere): a prorated line is the exact sum of
value × eligible days ÷ days in the month, rounded half-up to the fen; when the line is split
between payees (a bed moving to another org mid-month) the parts are allocated by largest
remainder, so they always add up to the line, and a full month is always the full amount.

The result is deterministic and independent of the order of the fact rows. Text for people is
built only when ``explain`` is true (a monthly run stores verdicts and frozen facts, and
explanations are rendered again from them on request).
"""

from __future__ import annotations

import bisect
import calendar
import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from services.subsidy.policies.document import Combination, PolicyDoc, Rule
from services.subsidy.policies.facts import ONE_DAY, Day, ElderFacts, birthday_in, day_facts
from services.subsidy.policies.predicates import Reason
from shared.i18n import T
from shared.money import fen_to_yuan
from shared.regions import region_name


@dataclass(frozen=True, slots=True)
class Part:
    org_id: uuid.UUID | None
    days: int
    amount_fen: int


@dataclass(frozen=True)
class Line:
    rule: str
    kind: str
    amount_fen: int
    pay_to: str
    fund: str
    parts: tuple[Part, ...]
    days: int
    days_in_month: int
    combination: str | None = None
    explanation: T | None = None
    visits: tuple[uuid.UUID, ...] = ()
    also: tuple[str, ...] = ()  # rules of the same highest group paid within this line


@dataclass(frozen=True)
class Refusal:
    rule: str
    code: str
    reason: T | None = None
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Evaluation:
    elder_id: uuid.UUID
    month: date
    policy_code: str
    policy_version: int
    policy_hash: str
    lines: tuple[Line, ...]
    refused: tuple[Refusal, ...]

    @functools.cached_property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


_CUTS: dict[str, tuple[int, ...]] = {}


def _age_cuts(doc: PolicyDoc) -> tuple[int, ...]:
    cuts = _CUTS.get(doc.hash)
    if cuts is None:
        found: set[int] = set()
        preds = [r.eligible for r in doc.rules] + [c.when for c in doc.combinations if c.when]
        for p in preds:
            for atom in p.atoms():
                found.update(atom.dims.get("age", ())[1:])  # an age atom's dims are (n - 1, n)
        cuts = _CUTS[doc.hash] = tuple(sorted(found))
    return cuts


@functools.cache
def month_bounds(month: date) -> tuple[date, date, int]:
    n = calendar.monthrange(month.year, month.month)[1]
    first = month.replace(day=1)
    return first, first.replace(day=n), n


def yuan(fen: int) -> str:
    return fen_to_yuan(fen)


@dataclass(slots=True)
class _Seg:
    start: date
    days: int
    facts: Day
    alive: bool
    qualified: bool


@dataclass
class _Work:
    """One rule's result before the combinations."""

    rule: Rule
    amount: int = 0
    parts: list[Part] = field(default_factory=list)
    days: int = 0
    refusal: Refusal | None = None
    combination: str | None = None
    detail: T | None = None  # how the amount was computed
    rep: Day | None = None  # the day whose facts explain the verdict
    visits: tuple[uuid.UUID, ...] = ()
    # one-time items: cumulative entitlement before/after caps, and what was granted before
    cost: int = 0
    prior: int = 0
    cap: int = 0
    entitled: int | None = None
    granted: int = 0
    capped_by: tuple[Combination, int] | None = None
    # monthly by-day lines: (segment, value, payee) of each eligible segment
    seg_values: list[tuple[_Seg, int, uuid.UUID | None]] = field(default_factory=list)
    also: tuple[str, ...] = ()  # other rules of a highest group that won some days
    merged: bool = False


_POINTS: dict[tuple[str, date], frozenset[date]] = {}


def _doc_points(doc: PolicyDoc, first: date, last: date) -> frozenset[date]:
    """Days within the month on which a rule starts or ends, or a dated amount changes."""
    held = _POINTS.get((doc.hash, first))
    if held is not None:
        return held
    points: set[date] = set()
    for rule in doc.rules:
        for edge in (rule.valid_from, rule.valid_to and rule.valid_to + ONE_DAY):
            if edge and first < edge <= last:
                points.add(edge)
        for v in rule.amount.values:
            if first < v.start <= last:
                points.add(v.start)
    held = _POINTS[(doc.hash, first)] = frozenset(points)
    return held


def _segments(doc: PolicyDoc, facts: ElderFacts, first: date, last: date) -> list[_Seg]:
    points = {p for p in facts.change_points() if first < p <= last}
    points.add(first)
    b = birthday_in(facts.birth_date, first, last)
    if b and b > first:
        points.add(b)
    points |= _doc_points(doc, first, last)
    starts = sorted(points)
    segs: list[_Seg] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else last + ONE_DAY
        alive = facts.deceased_on is None or start < facts.deceased_on
        qualified = facts.disqualified_on is None or start < facts.disqualified_on
        segs.append(_Seg(start, (end - start).days, day_facts(facts, start), alive, qualified))
    return segs


def _allocate_int(nums: Sequence[int], n: int) -> list[int]:
    """Parts ``nums[i] / n`` (exact fractions with one denominator): the sum rounded half-up
    to the fen, shared out by largest remainder (ties: the earlier part). Integers only."""
    total = sum(nums)
    whole = (2 * total + n) // (2 * n)
    floors = [x // n for x in nums]
    rest = whole - sum(floors)
    if rest > 0:
        order = sorted(range(len(nums)), key=lambda i: (-(nums[i] % n), i))
        for i in order[:rest]:
            floors[i] += 1
    return floors


def prorate(amount_fen: int, day_counts: Sequence[int], days_in_month: int) -> list[int]:
    """Parts of a monthly ``amount_fen`` for the given day counts (the rule above)."""
    return _allocate_int([amount_fen * d for d in day_counts], days_in_month)


def evaluate(
    doc: PolicyDoc,
    facts: ElderFacts,
    month: date,
    *,
    barred_orgs: Mapping[uuid.UUID, date] | None = None,
    explain: bool = True,
    memo: dict | None = None,
) -> Evaluation:
    """``memo`` (a dict kept for one run) shares results between elders whose month is one
    unchanging day of the same facts — most of a district; results are identical either way."""
    first, last, n = month_bounds(month)
    barred = barred_orgs or {}
    segs = _segments(doc, facts, first, last)
    key = None
    if (
        memo is not None
        and not explain
        and len(segs) == 1
        and not (facts.modifications or facts.visits or facts.grants)
    ):
        s0 = segs[0]
        d = s0.facts
        org = d.bed.org_id if d.bed else None
        key = (
            doc.hash,
            first,
            bisect.bisect_right(_age_cuts(doc), d.age),  # predicates only compare ages with these
            d.hukou,
            d.residence,
            d.arrangement,
            d.at_home,
            tuple(
                sorted((c.code, c.grade, c.receives_nursing_subsidy) for c in d.categories.values())
            ),
            d.level,
            d.dementia,
            org,
            org is not None and org in barred and barred[org] <= first,
            d.approved,
            d.nursing_subsidy,
            s0.alive,
            s0.qualified,
        )
        held = memo.get(key)
        if held is not None:
            return Evaluation(
                facts.elder_id, first, doc.code, doc.version, doc.hash, held[0], held[1]
            )
    groups = {r: c for c in doc.combinations if c.kind == "highest" for r in c.rules}
    day_excl = [c for c in doc.combinations if c.kind == "exclude" and c.when is not None]
    works: dict[str, _Work] = {}
    for rule in doc.rules:
        works[rule.id] = _rule(
            doc, rule, facts, segs, first, last, n, barred, groups, day_excl, explain
        )
    for combo in doc.combinations:
        if combo.kind == "cap":
            _apply_cap(combo, works, last, explain)
    for w in works.values():
        _settle_one_time(w, explain)
    for combo in doc.combinations:
        if combo.kind == "highest":
            _apply_highest(combo, works, doc, n, explain, facts)
    for combo in doc.combinations:
        if combo.kind == "exclude" and combo.with_rule:
            winner = works.get(combo.with_rule)
            if winner and winner.refusal is None and winner.amount > 0:
                for rid in combo.rules:
                    w = works[rid]
                    if w.refusal is None and w.amount > 0:
                        w.refusal = Refusal(
                            rid,
                            "excluded",
                            _combo_text(combo, doc, winner.rule) if explain else None,
                        )
    lines: list[Line] = []
    refused: list[Refusal] = []
    for rule in doc.rules:
        w = works[rule.id]
        if w.merged:
            continue
        if w.refusal is not None:
            refused.append(w.refusal)
            continue
        if w.amount <= 0:
            refused.append(
                Refusal(
                    rule.id,
                    "nothing_due",
                    T("本月无应发金额", "nothing due this month") if explain else None,
                )
            )
            continue
        lines.append(
            Line(
                rule=rule.id,
                kind=rule.kind,
                amount_fen=w.amount,
                pay_to=rule.pay_to,
                fund=rule.fund,
                parts=tuple(w.parts),
                days=w.days,
                days_in_month=n,
                combination=w.combination,
                explanation=_explanation(doc, w) if explain else None,
                visits=w.visits,
                also=w.also,
            )
        )
    if key is not None:
        memo[key] = (tuple(lines), tuple(refused))  # type: ignore[index]
    return Evaluation(
        elder_id=facts.elder_id,
        month=first,
        policy_code=doc.code,
        policy_version=doc.version,
        policy_hash=doc.hash,
        lines=tuple(lines),
        refused=tuple(refused),
    )


def _granted(
    facts: ElderFacts, doc: PolicyDoc, rule_ids: set[str], first: date, *, year: bool
) -> int:
    total = 0
    for g in facts.grants:
        if g.policy_code != doc.code or g.rule not in rule_ids or g.month >= first:
            continue
        if year and g.month.year != first.year:
            continue
        total += g.amount_fen
    return total


def _rule(
    doc: PolicyDoc,
    rule: Rule,
    facts: ElderFacts,
    segs: list[_Seg],
    first: date,
    last: date,
    n: int,
    barred: Mapping[uuid.UUID, date],
    groups: Mapping[str, Combination],
    day_excl: list[Combination],
    explain: bool,
) -> _Work:
    w = _Work(rule)
    if rule.kind == "one_time":
        alive = [x for x in segs if x.alive] or segs
        return _one_time(
            doc, rule, facts, w, first, last, barred, day_excl, explain, alive[-1].facts
        )
    excl = [c for c in day_excl if rule.id in c.rules]
    eligible: list[_Seg] = []
    last_fail: tuple[str, _Seg | None, Combination | None] = ("not_eligible", None, None)
    for s in segs:
        if not rule.in_force(s.start) or (rule.valid_to and s.start > rule.valid_to):
            last_fail = ("not_in_force", s, None)
            continue
        if not s.alive:
            last_fail = ("deceased", s, None)
            continue
        if not s.qualified:
            last_fail = ("disqualified", s, None)
            continue
        if not rule.eligible.fn(s.facts):
            last_fail = ("not_eligible", s, None)
            continue
        hit = (
            next((c for c in excl if c.when is not None and c.when.fn(s.facts)), None)
            if excl
            else None
        )
        if hit is not None:
            last_fail = ("excluded", s, hit)
            continue
        if rule.pay_to == "org" and rule.kind != "per_visit":
            org = s.facts.bed.org_id if s.facts.bed else None
            if org is not None and org in barred and barred[org] <= s.start:
                last_fail = ("org_disqualified", s, None)
                continue
        eligible.append(s)
    if not eligible:
        code, seg, combo = last_fail
        rep = seg.facts if seg else segs[-1].facts
        w.refusal = Refusal(
            rule.id,
            code,
            _refusal_text(doc, rule, facts, code, rep, combo) if explain else None,
            _steps(rule, rep) if explain and code == "not_eligible" else (),
        )
        return w
    w.rep = eligible[-1].facts
    w.days = sum(s.days for s in eligible)
    if rule.kind == "monthly":
        _monthly(rule, w, eligible, n, explain, facts)
    elif rule.kind == "annual":
        _annual(doc, rule, facts, w, eligible, first, groups, explain)
    else:
        _per_visit(rule, facts, w, eligible, first, last, barred, explain)
    return w


def _blank(rule: Rule, w: _Work, explain: bool) -> None:
    w.refusal = Refusal(
        rule.id,
        "amount_blank",
        T(
            f"{rule.name.zh}：金额尚未设定（草案，原文为 xx），暂不能发放",
            f"{rule.name.en}: the amount is not set yet (draft; xx in the source)",
        )
        if explain
        else None,
    )


def _monthly(
    rule: Rule, w: _Work, eligible: list[_Seg], n: int, explain: bool, facts: ElderFacts
) -> None:
    a = rule.amount
    if a.proration == "none":
        s = eligible[0]
        v = a.value_on(s.start)
        if v is None or v.fen is None:
            return _blank(rule, w, explain)
        org = s.facts.bed.org_id if (rule.pay_to == "org" and s.facts.bed) else None
        w.amount = v.fen
        w.parts = [Part(org, w.days, v.fen)]
        if explain:
            w.detail = T(
                f"{yuan(v.fen)} 元/月（当月有资格即全额发放）",
                f"{yuan(v.fen)} yuan a month (whole month)",
            )
        return None
    keys: list[tuple[uuid.UUID | None, int]] = []
    nums: list[int] = []
    days: list[int] = []
    for s in eligible:
        v = a.value_on(s.start)
        if v is None or v.fen is None:
            return _blank(rule, w, explain)
        org = s.facts.bed.org_id if (rule.pay_to == "org" and s.facts.bed) else None
        w.seg_values.append((s, v.fen, org))
        key = (org, v.fen)
        if key in keys:
            i = keys.index(key)
            nums[i] += v.fen * s.days
            days[i] += s.days
        else:
            keys.append(key)
            nums.append(v.fen * s.days)
            days.append(s.days)
    amounts = _allocate_int(nums, n)
    by_org: dict[uuid.UUID | None, list[int]] = {}
    for (org, _), d, fen in zip(keys, days, amounts, strict=True):
        acc = by_org.setdefault(org, [0, 0])
        acc[0] += d
        acc[1] += fen
    w.parts = [Part(org, d, fen) for org, (d, fen) in by_org.items()]
    w.amount = sum(amounts)
    if explain:
        values = sorted({k[1] for k in keys})
        rate = "、".join(f"{yuan(v)}" for v in values)
        if w.days == n:
            w.detail = T(
                f"{rate} 元/月，全月 {n} 天", f"{rate} yuan a month, the whole month ({n} days)"
            )
        else:
            spans = "，".join(f"{s.start}–{s.start + timedelta(days=s.days - 1)}" for s in eligible)
            moved = _move_note(facts, [(s.start, s.days) for s in eligible], n)
            w.detail = T(
                f"{rate} 元/月 × {w.days}/{n} 天（{spans}）= {yuan(w.amount)} 元（按日折算，"
                f"四舍五入到分）{moved.zh}",
                f"{rate} yuan a month × {w.days}/{n} days ({spans}) = {yuan(w.amount)} yuan "
                f"(prorated by day, rounded half-up to the fen){moved.en}",
            )
    return None


def _place(code: str) -> str:
    name = region_name(code)
    return f"{code}（{name}）" if name else code


def _move_note(facts: ElderFacts, paid: list[tuple[date, int]], n: int) -> T:
    """ "; the elder moved on …" for each recorded move on a day where a prorated line's paid
    days begin or end — the reason a person reading the notice needs for the cut."""
    if not facts.moves or not paid:
        return T("", "")
    first = min(start for start, _ in paid).replace(day=1)
    edges: set[date] = set()
    runs: list[list[date]] = []
    for start, days in sorted(paid):
        end = start + timedelta(days=days)  # the day after
        if runs and runs[-1][1] == start:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    for start, end in runs:
        if start > first:
            edges.add(start)
        if (end - first).days < n:
            edges.add(end)
    zh: list[str] = []
    en: list[str] = []
    for before, m in zip(facts.moves, facts.moves[1:], strict=False):
        if m.valid_from not in edges:
            continue
        parts_zh, parts_en = [], []
        if m.hukou_region != before.hukou_region:
            parts_zh.append(f"户籍 {_place(before.hukou_region)} → {_place(m.hukou_region)}")
            parts_en.append(f"hukou {before.hukou_region} → {m.hukou_region}")
        if m.residence_region != before.residence_region:
            parts_zh.append(
                f"居住地 {_place(before.residence_region)} → {_place(m.residence_region)}"
            )
            parts_en.append(f"residence {before.residence_region} → {m.residence_region}")
        zh.append(f"老人于 {m.valid_from} 迁居（{'，'.join(parts_zh)}）")
        en.append(f"the elder moved on {m.valid_from} ({', '.join(parts_en)})")
    if not zh:
        return T("", "")
    return T("；" + "；".join(zh), "; " + "; ".join(en))


def _annual(
    doc: PolicyDoc,
    rule: Rule,
    facts: ElderFacts,
    w: _Work,
    eligible: list[_Seg],
    first: date,
    groups: Mapping[str, Combination],
    explain: bool,
) -> None:
    s = eligible[0]
    v = rule.amount.value_on(s.start)
    if v is None or v.fen is None:
        return _blank(rule, w, explain)
    group = groups.get(rule.id)
    members = set(group.rules) if group else {rule.id}
    granted = _granted(facts, doc, members, first, year=True)
    due = v.fen - granted
    if due <= 0:
        w.refusal = Refusal(
            rule.id,
            "already_granted",
            T(
                f"{rule.name.zh}：本年度已发放 {yuan(granted)} 元，达到年度标准 {yuan(v.fen)} 元",
                f"{rule.name.en}: {yuan(granted)} yuan already granted this year (annual "
                f"{yuan(v.fen)})",
            )
            if explain
            else None,
        )
        return None
    org = s.facts.bed.org_id if (rule.pay_to == "org" and s.facts.bed) else None
    w.amount = due
    w.parts = [Part(org, w.days, due)]
    if explain:
        w.detail = T(
            f"年度标准 {yuan(v.fen)} 元，本年已发 {yuan(granted)} 元，本月发放 {yuan(due)} 元",
            f"annual {yuan(v.fen)} yuan, {yuan(granted)} granted earlier this year, {yuan(due)} "
            "now",
        )
    return None


def _per_visit(
    rule: Rule,
    facts: ElderFacts,
    w: _Work,
    eligible: list[_Seg],
    first: date,
    last: date,
    barred: Mapping[uuid.UUID, date],
    explain: bool,
) -> None:
    a = rule.amount
    spans = [(s.start, s.start + timedelta(days=s.days - 1)) for s in eligible]
    visits = sorted(
        (
            v
            for v in facts.visits
            if first <= v.service_day <= last
            and any(lo <= v.service_day <= hi for lo, hi in spans)
            and (not a.items or set(a.items) & set(v.item_codes))
            and not (v.org_id in barred and barred[v.org_id] <= v.service_day)
        ),
        key=lambda v: (v.service_day, str(v.visit_id)),
    )
    if a.max_visits is not None:
        visits = visits[: a.max_visits]
    if not visits or (len(visits) < a.min_visits and a.below_minimum == "refuse"):
        w.refusal = Refusal(
            rule.id,
            "below_minimum" if visits else "no_visits",
            T(
                f"{rule.name.zh}：本月核验上门 {len(visits)} 次，标准为每月不少于 {a.min_visits} "
                "次",
                f"{rule.name.en}: {len(visits)} verified visits this month; the standard is at "
                f"least {a.min_visits}",
            )
            if explain
            else None,
        )
        return None
    by_org: dict[uuid.UUID | None, list[int]] = {}
    total = 0
    for v in visits:
        value = a.value_on(v.service_day)
        if value is None or value.fen is None:
            return _blank(rule, w, explain)
        org = v.org_id if rule.pay_to == "org" else None
        acc = by_org.setdefault(org, [0, 0])
        acc[0] += 1
        acc[1] += value.fen
        total += value.fen
    w.parts = [Part(org, count, fen) for org, (count, fen) in by_org.items()]
    w.amount = total
    w.visits = tuple(v.visit_id for v in visits)
    if explain:
        rate = yuan(a.value_on(visits[-1].service_day).fen or 0)  # type: ignore[union-attr]
        short_zh = f"（未达每月 {a.min_visits} 次的标准）" if len(visits) < a.min_visits else ""
        short_en = f" (below the standard of {a.min_visits})" if len(visits) < a.min_visits else ""
        w.detail = T(
            f"核验上门服务 {len(visits)} 次 × {rate} 元/次 = {yuan(total)} 元{short_zh}",
            f"{len(visits)} verified visits × {rate} yuan = {yuan(total)} yuan{short_en}",
        )
    return None


def _one_time(
    doc: PolicyDoc,
    rule: Rule,
    facts: ElderFacts,
    w: _Work,
    first: date,
    last: date,
    barred: Mapping[uuid.UUID, date],
    day_excl: list[Combination],
    explain: bool,
    last_day: Day,
) -> _Work:
    """The cumulative entitlement (``w.entitled``); what is due is settled after the caps."""
    a = rule.amount
    # work on a bed counts once the bed has been opened (its first active day)
    beds = {b.bed_id: b for b in facts.beds if any(s.start <= last for s in b.active)}
    excl = [c for c in day_excl if rule.id in c.rules]
    eligible = []
    last_fail: tuple[str, Day | None, Combination | None] = ("no_modification", None, None)
    mods = sorted(facts.modifications, key=lambda m: (m.done_on, str(m.bed_id), m.kind, m.cost_fen))
    for m in mods:
        if m.kind not in a.cost_kinds or m.done_on > last or m.bed_id not in beds:
            continue
        d = day_facts(facts, m.done_on)
        org = beds[m.bed_id].org_id
        hit = next((c for c in excl if c.when is not None and c.when.fn(d)), None)
        if not rule.in_force(m.done_on):
            last_fail = ("not_in_force", d, None)
        elif facts.deceased_on and m.done_on >= facts.deceased_on:
            last_fail = ("deceased", d, None)
        elif facts.disqualified_on and m.done_on >= facts.disqualified_on:
            last_fail = ("disqualified", d, None)
        elif not rule.eligible.fn(d):
            last_fail = ("not_eligible", d, None)
        elif hit is not None:
            last_fail = ("excluded", d, hit)
        elif org in barred and barred[org] <= m.done_on:
            last_fail = ("org_disqualified", d, None)
        else:
            eligible.append((m, d))
    if not eligible:
        code, rep, combo = last_fail
        if facts.disqualified_on and facts.disqualified_on <= first:
            code = "disqualified"
        if rep is None:
            rep = last_day
        if code == "no_modification" and not rule.eligible.fn(rep):
            code = "not_eligible"
        text = None
        if explain:
            text = (
                T(
                    f"{rule.name.zh}：截至 {last} 无可补贴的改造记录",
                    f"{rule.name.en}: no eligible modification recorded by {last}",
                )
                if code == "no_modification"
                else _refusal_text(doc, rule, facts, code, rep, combo)
            )
        steps = _steps(rule, rep) if explain and code == "not_eligible" else ()
        w.refusal = Refusal(rule.id, code, text, steps)
        return w
    cap = a.value_on(last)
    if cap is None or cap.fen is None:
        _blank(rule, w, explain)
        return w
    w.cost = sum(m.cost_fen for m, _ in eligible)
    w.prior = sum(
        b.amount_fen for b in facts.benefits if b.code in a.counts_prior and b.received_on <= last
    )
    w.cap = cap.fen
    w.entitled = min(w.cost, max(0, cap.fen - w.prior))
    w.granted = _granted(facts, doc, {rule.id}, first, year=False)
    m_last, w.rep = eligible[-1]
    w.parts = [Part(beds[m_last.bed_id].org_id, 0, 0)]
    return w


def _apply_cap(combo: Combination, works: dict[str, _Work], last: date, explain: bool) -> None:
    cap = None
    for v in combo.cap:
        if v.start <= last:
            cap = v
    if cap is None or cap.fen is None:
        return
    members = [works[r] for r in combo.rules if works[r].entitled is not None]
    over = sum(w.entitled or 0 for w in members) - cap.fen
    for w in reversed(members):  # later items give way first
        if over <= 0:
            break
        cut = min(over, w.entitled or 0)
        w.entitled = (w.entitled or 0) - cut
        over -= cut
        w.capped_by = (combo, cap.fen)
        w.combination = str(combo.name) if explain else combo.name.zh


def _settle_one_time(w: _Work, explain: bool) -> None:
    if w.entitled is None or w.refusal is not None:
        return
    rule = w.rule
    due = w.entitled - w.granted
    org = w.parts[0].org_id if w.parts else None
    if due <= 0:
        if w.capped_by is not None:
            combo, cap = w.capped_by
            text = T(
                f"{rule.name.zh}：{combo.name.zh}，合计不超过 {yuan(cap)} 元，已用足（"
                f"{combo.reference}）",
                f"{rule.name.en}: {combo.name.en} — together at most {yuan(cap)} yuan, reached "
                f"({combo.reference})",
            )
            w.refusal = Refusal(rule.id, "capped", text if explain else None)
        else:
            text = T(
                f"{rule.name.zh}：已发放 {yuan(w.granted)} 元，达到可补贴额 {yuan(w.entitled)} 元",
                f"{rule.name.en}: {yuan(w.granted)} yuan already granted — the full entitlement",
            )
            w.refusal = Refusal(rule.id, "already_granted", text if explain else None)
        return
    w.amount = due
    w.parts = [Part(org, 0, due)]
    if not explain:
        return
    prior_zh = f"，此前已享受同类补助 {yuan(w.prior)} 元计入上限" if w.prior else ""
    prior_en = f", {yuan(w.prior)} yuan received earlier counts against it" if w.prior else ""
    granted_zh = f"，此前已发 {yuan(w.granted)} 元" if w.granted else ""
    granted_en = f", {yuan(w.granted)} granted before" if w.granted else ""
    cap_zh = cap_en = ""
    if w.capped_by is not None:
        combo, cap = w.capped_by
        cap_zh = f"；{combo.name.zh}合计不超过 {yuan(cap)} 元，本项核减"
        cap_en = f"; {combo.name.en}: together at most {yuan(cap)} yuan, this item reduced"
    w.detail = T(
        f"实际费用 {yuan(w.cost)} 元，本项上限 {yuan(w.cap)} 元{prior_zh}{cap_zh}，"
        f"可补贴 {yuan(w.entitled)} 元{granted_zh}，本月发放 {yuan(due)} 元",
        f"actual cost {yuan(w.cost)} yuan, item cap {yuan(w.cap)}{prior_en}{cap_en}; "
        f"entitled {yuan(w.entitled)}{granted_en}; {yuan(due)} now",
    )


def _apply_highest(
    combo: Combination,
    works: dict[str, _Work],
    doc: PolicyDoc,
    n: int,
    explain: bool,
    facts: ElderFacts,
) -> None:
    candidates = [works[r] for r in combo.rules if works[r].refusal is None and works[r].amount > 0]
    if not candidates:
        return
    by_day = all(
        w.rule.kind == "monthly" and w.rule.amount.proration == "by_day" for w in candidates
    )
    if by_day and len(candidates) > 1:
        _highest_by_day(combo, candidates, n, explain, facts)
        return
    winner = max(candidates, key=lambda w: (w.amount, -w.rule.order))
    winner.combination = str(combo.name) if explain else combo.name.zh
    for w in candidates:
        if w is not winner:
            _supersede(w, winner, combo, explain)


def _supersede(w: _Work, winner: _Work, combo: Combination, explain: bool) -> None:
    w.refusal = Refusal(
        w.rule.id,
        "superseded",
        T(
            f"{w.rule.name.zh}（{yuan(w.amount)} 元）与"
            f"{winner.rule.name.zh}（{yuan(winner.amount)} 元）"
            f"不重复计算，就高发放后者（{combo.reference}）",
            f"{w.rule.name.en} ({yuan(w.amount)} yuan) is not paid on top of "
            f"{winner.rule.name.en} ({yuan(winner.amount)} yuan): the higher one is paid "
            f"({combo.reference})",
        )
        if explain
        else None,
    )


def _highest_by_day(
    combo: Combination, members: list[_Work], n: int, explain: bool, facts: ElderFacts
) -> None:
    """Each day at the highest standard the elder meets that day, as one line."""
    best: dict[date, tuple[int, int, _Work, _Seg, uuid.UUID | None]] = {}
    for w in members:
        for seg, value, org in w.seg_values:
            key = (value, -w.rule.order)
            held = best.get(seg.start)
            if held is None or key > (held[0], held[1]):
                best[seg.start] = (value, -w.rule.order, w, seg, org)
    share: dict[str, int] = {}
    keys: list[tuple[uuid.UUID | None, int, str]] = []
    nums: list[int] = []
    days: list[int] = []
    for start in sorted(best):
        value, _, w, seg, org = best[start]
        k = (org, value, w.rule.id)
        if k in keys:
            i = keys.index(k)
            nums[i] += value * seg.days
            days[i] += seg.days
        else:
            keys.append(k)
            nums.append(value * seg.days)
            days.append(seg.days)
    amounts = _allocate_int(nums, n)
    by_org: dict[uuid.UUID | None, list[int]] = {}
    for (org, _, rid), d, fen in zip(keys, days, amounts, strict=True):
        acc = by_org.setdefault(org, [0, 0])
        acc[0] += d
        acc[1] += fen
        share[rid] = share.get(rid, 0) + fen
    # The line is named after the standard that paid most (ties: the later days').
    last_rid = best[max(best)][2].rule.id
    lead_id = max(share, key=lambda r: (share[r], r == last_rid))
    lead = next(w for w in members if w.rule.id == lead_id)
    lead.amount = sum(amounts)
    lead.parts = [Part(org, d, fen) for org, (d, fen) in by_org.items()]
    lead.days = sum(days)
    lead.combination = str(combo.name) if explain else combo.name.zh
    lead.also = tuple(r for r in share if r != lead_id)
    lead.rep = best[max(best)][3].facts if lead_id == last_rid else lead.rep
    if explain:
        pieces_zh, pieces_en = [], []
        for start in sorted(best):
            value, _, w, seg, _ = best[start]
            end = seg.start + timedelta(days=seg.days - 1)
            pieces_zh.append(f"{start}–{end} 按{w.rule.name.zh} {yuan(value)} 元/月")
            pieces_en.append(f"{start}–{end} at {w.rule.name.en} {yuan(value)} yuan a month")
        moved = _move_note(facts, [(st, best[st][3].days) for st in best], n)
        lead.detail = T(
            "；".join(pieces_zh)
            + f"，合计 {lead.days}/{n} 天 = {yuan(lead.amount)} 元（每日就高，按日折算）"
            + moved.zh,
            "; ".join(pieces_en) + f": {lead.days}/{n} days = {yuan(lead.amount)} yuan "
            "(the highest standard each day, prorated by day)" + moved.en,
        )
    for w in members:
        if w is lead or w.rule.id in share:
            if w is not lead:
                w.merged = True  # paid within the lead's line, on the days it was highest
            continue
        _supersede(w, lead, combo, explain)


# ------------------------------------------------------------------------------- text


def _join(reasons: list[Reason], sep: str, lang: str) -> str:
    texts = [r.text.zh if lang == "zh" else r.text.en for r in reasons]
    return sep.join(dict.fromkeys(texts))  # a fact named by two conditions is said once


def _explanation(doc: PolicyDoc, w: _Work) -> T:
    rule = w.rule
    _, used = rule.eligible.explain(w.rep) if w.rep else (True, [])
    facts_zh = _join(used, "；", "zh")
    facts_en = _join(used, "; ", "en")
    detail = w.detail or T("", "")
    combo_zh = f"（{w.combination}）" if w.combination else ""
    return T(
        f"{rule.name.zh}：{facts_zh}。{detail.zh}{combo_zh}。依据：{rule.reference}（{doc.title} "
        f"v{doc.version}）",
        f"{rule.name.en}: {facts_en}. {detail.en}. Clause: {rule.reference} ({doc.code} "
        f"v{doc.version})",
    )


def _combo_text(combo: Combination, doc: PolicyDoc, other: Rule) -> T:
    return T(
        f"与{other.name.zh}不重复享受（{combo.name.zh}，{combo.reference}）",
        f"not paid together with {other.name.en} ({combo.name.en}, {combo.reference})",
    )


def _refusal_text(
    doc: PolicyDoc, rule: Rule, facts: ElderFacts, code: str, rep: Day, combo: Combination | None
) -> T:
    name = rule.name
    if code == "not_in_force":
        window = f"{rule.valid_from or doc.valid_from}–{rule.valid_to or ''}"
        return T(
            f"{name.zh}：本规则仅在 {window} 有效（{rule.reference}）",
            f"{name.en}: this rule applies only {window} ({rule.reference})",
        )
    if code == "deceased":
        return T(
            f"{name.zh}：老人已于 {facts.deceased_on} 去世",
            f"{name.en}: the elder died on {facts.deceased_on}",
        )
    if code == "disqualified":
        return T(
            f"{name.zh}：因弄虚作假骗取补贴，自 {facts.disqualified_on} 起终身取消享受资格（篇七 "
            "管理监督）",
            f"{name.en}: disqualified for life from {facts.disqualified_on} (fraud; 篇七)",
        )
    if code == "org_disqualified":
        return T(
            f"{name.zh}：服务机构已被取消服务资格，不予结算",
            f"{name.en}: the service organisation has been disqualified",
        )
    if code == "excluded" and combo is not None and combo.when is not None:
        _, why = combo.when.explain(rep)
        return T(
            f"{name.zh}：{_join(why, '；', 'zh')}，不再重复享受（{combo.name.zh}，"
            f"{combo.reference}）",
            f"{name.en}: {_join(why, '; ', 'en')} — not paid on top ({combo.name.en}, "
            f"{combo.reference})",
        )
    _, why = rule.eligible.explain(rep)
    return T(
        f"{name.zh}：不符合条件——{_join(why, '；', 'zh')}（{rule.reference}）",
        f"{name.en}: not eligible — {_join(why, '; ', 'en')} ({rule.reference})",
    )


def _steps(rule: Rule, rep: Day) -> tuple[str, ...]:
    """The steps that would make the elder eligible — only when every failed condition is
    one (a bed not yet opened, an application not yet made, an overdue re-assessment)."""
    ok, why = rule.eligible.explain(rep)
    if ok or not why or not all(r.step for r in why):
        return ()
    return tuple(sorted({r.step for r in why if r.step}))
