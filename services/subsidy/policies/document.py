"""A policy document parsed and validated: rules, dated amounts, declared combinations.

``parse_document(raw)`` refuses — with every (field, message) at fault — a document that is
malformed, that names unknown facts, whose active version has blank amounts (the seeds'
``xx``), or in which two rules could grant for the same ``need`` on the same day without a
declared combination (``highest``, ``exclude``, ``cap`` or ``stack``): the validator searches
the facts the two predicates read for a day on which both hold, the way Catala refuses two
conflicting definitions. Documents are YAML; no code runs from them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from services.subsidy.policies.predicates import Compiler, PolicyInvalid, Pred
from shared.i18n import T
from shared.money import yuan_to_fen

KINDS = ("monthly", "annual", "per_visit", "one_time")
PAY_TO = ("org", "voucher")
PRORATION = ("by_day", "none")
COST_KINDS = ("aging_adaptation", "smart")
BLANKS = ("xx", "xxx", "x", "")


@dataclass(frozen=True, slots=True)
class Dated:
    start: date
    fen: int | None  # None: blank in the source (an admin fills it in)


@dataclass(frozen=True)
class Amount:
    kind: str
    values: tuple[Dated, ...]  # the monthly/annual/per-visit figure, or the cap of actual cost
    proration: str = "by_day"
    cost_kinds: tuple[str, ...] = ()
    counts_prior: tuple[str, ...] = ()
    min_visits: int = 0
    max_visits: int | None = None
    items: tuple[str, ...] = ()
    below_minimum: str = "pay"  # per_visit: pay the visits made, or refuse the line

    def value_on(self, day: date) -> Dated | None:
        found = None
        for v in self.values:
            if v.start <= day:
                found = v
        return found


@dataclass(frozen=True)
class Rule:
    id: str
    name: T
    need: str
    kind: str
    eligible: Pred
    amount: Amount
    pay_to: str
    fund: str
    reference: str
    valid_from: date | None = None
    valid_to: date | None = None
    order: int = 0

    def in_force(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


@dataclass(frozen=True)
class Combination:
    kind: str  # highest | exclude | cap | stack
    rules: tuple[str, ...]
    name: T
    reference: str
    when: Pred | None = None  # exclude: the line is removed on days this holds
    with_rule: str | None = None  # exclude: … or when this other rule grants
    cap: tuple[Dated, ...] = ()


@dataclass(frozen=True)
class Reward:
    id: str
    name: T
    min_beds: int
    min_satisfaction_pct: int
    fen: int | None
    fund: str
    reference: str


@dataclass(frozen=True)
class PolicyDoc:
    code: str
    version: int
    title: str
    title_en: str
    status: str
    regions: tuple[str, ...]
    valid_from: date
    valid_to: date | None
    funds: Mapping[str, T]
    rules: tuple[Rule, ...]
    combinations: tuple[Combination, ...]
    rewards: tuple[Reward, ...]
    raw: Mapping[str, Any]
    hash: str
    blanks: tuple[tuple[str, T], ...] = ()
    source: str | None = None
    voucher_grace_days: int = 15
    rollover: str = "none"
    checklists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)

    def in_force(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


def canonical(raw: Mapping[str, Any]) -> bytes:
    return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS, default=str)


def document_hash(raw: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(raw)).hexdigest()


@dataclass
class _Parser:
    raw: Mapping[str, Any]
    errors: list[tuple[str, T]] = field(default_factory=list)
    blanks: list[tuple[str, T]] = field(default_factory=list)

    def err(self, path: str, zh: str, en: str) -> None:
        self.errors.append((path, T(zh, en)))

    def need(self, obj: Mapping[str, Any], key: str, path: str, typ: type | tuple) -> Any:
        if key not in obj or obj[key] is None:
            self.err(f"{path}{key}", "缺少必填字段", "is required")
            return None
        value = obj[key]
        if not isinstance(value, typ) or (isinstance(value, bool) and typ is int):
            self.err(f"{path}{key}", "类型不正确", "has the wrong type")
            return None
        return value

    def money(self, value: Any, path: str) -> int | None:
        if value is None or (isinstance(value, str) and value.strip().lower() in BLANKS):
            self.blanks.append(
                (
                    path,
                    T(
                        "金额空缺（原文为 xx），需由管理员补充",
                        "amount is blank (xx in the source); an admin must fill it in",
                    ),
                )
            )
            return None
        if isinstance(value, bool | float):
            self.err(
                path,
                '金额应写为整数或字符串（如 "12.50"），不用浮点数',
                'write amounts as integers or strings ("12.50"), never floats',
            )
            return None
        try:
            fen = yuan_to_fen(value)
        except (TypeError, ValueError):
            self.err(path, f"{value!r} 不是金额", f"{value!r} is not an amount")
            return None
        if fen < 0:
            self.err(path, "金额不能为负", "must not be negative")
            return None
        return fen

    def dated(self, node: Any, path: str, default_start: date) -> tuple[Dated, ...]:
        if not isinstance(node, list):
            return (Dated(default_start, self.money(node, path)),)
        out: list[Dated] = []
        for i, item in enumerate(node):
            p = f"{path}[{i}]"
            if not isinstance(item, dict) or "yuan" not in item:
                self.err(p, "应为 {from, yuan}", "must be {from, yuan}")
                continue
            start = item.get("from", default_start)
            if not isinstance(start, date):
                self.err(f"{p}.from", "应为日期", "must be a date")
                continue
            if out and start <= out[-1].start:
                self.err(f"{p}.from", "日期应递增", "dates must increase")
            out.append(Dated(start, self.money(item["yuan"], f"{p}.yuan")))
        if not out:
            self.err(path, "至少需要一个金额", "needs at least one amount")
        return tuple(out)


def _name(node: Mapping[str, Any], key: str = "name") -> T:
    zh = str(node.get(key) or node.get("id") or "")
    return T(zh, str(node.get(f"{key}_en") or zh))


def parse_document(raw: Mapping[str, Any]) -> PolicyDoc:
    """Parse and validate; raise ``PolicyInvalid`` with every error found."""
    if not isinstance(raw, Mapping):
        raise PolicyInvalid([("document", T("策略文档应为映射", "a policy document is a mapping"))])
    p = _Parser(raw)
    code = p.need(raw, "code", "", str) or "?"
    version = p.need(raw, "version", "", int) or 0
    title = p.need(raw, "title", "", str) or code
    status = raw.get("status", "active")
    if status not in ("active", "draft"):
        p.err("status", "应为 active 或 draft", "must be active or draft")
    valid_from = p.need(raw, "valid_from", "", date) or date.min
    valid_to = raw.get("valid_to")
    if valid_to is not None and (not isinstance(valid_to, date) or valid_to < valid_from):
        p.err("valid_to", "应为不早于 valid_from 的日期", "must be a date on or after valid_from")
    regions = tuple(str(r) for r in (raw.get("regions") or ()))
    if not regions:
        p.blanks.append(
            (
                "regions",
                T(
                    "适用区域空缺，需由采用该政策的地区补充",
                    "no region yet: the adopting district sets it",
                ),
            )
        )
    for i, r in enumerate(regions):
        if not r.isdigit():
            p.err(
                f"regions[{i}]", f"{r!r} 不是区划代码前缀", f"{r!r} is not a division-code prefix"
            )

    funds_raw = raw.get("funds") or {}
    funds: dict[str, T] = {}
    if not isinstance(funds_raw, dict) or not funds_raw:
        p.err("funds", "需列出资金来源", "must list the fund sources")
    else:
        for fcode, fname in funds_raw.items():
            if isinstance(fname, dict):
                funds[str(fcode)] = T(str(fname.get("zh", fcode)), str(fname.get("en", fcode)))
            else:
                funds[str(fcode)] = T(str(fname), str(fcode))

    defaults = raw.get("defaults") or {}
    compiler = Compiler(raw.get("definitions") or {}, regions, code)
    for name in compiler.definitions:
        compiler.compile(name, f"definitions.{name}")

    rules: list[Rule] = []
    seen: set[str] = set()
    for i, node in enumerate(raw.get("rules") or []):
        path = f"rules[{i}]"
        if not isinstance(node, dict):
            p.err(path, "规则应为映射", "a rule is a mapping")
            continue
        rid = p.need(node, "id", f"{path}.", str) or f"#{i}"
        path = f"rules[{rid}]"
        if rid in seen:
            p.err(f"{path}.id", "规则 id 重复", "duplicate rule id")
        seen.add(rid)
        kind = node.get("kind")
        if kind not in KINDS:
            p.err(f"{path}.kind", f"应为 {'/'.join(KINDS)}", f"must be one of {', '.join(KINDS)}")
            kind = "monthly"
        pay_to = node.get("pay_to", "org")
        if pay_to not in PAY_TO:
            p.err(
                f"{path}.pay_to", f"应为 {'/'.join(PAY_TO)}", f"must be one of {', '.join(PAY_TO)}"
            )
        fund = node.get("fund")
        if fund not in funds:
            p.err(
                f"{path}.fund",
                f"资金来源 {fund!r} 未在 funds 中列出",
                f"fund {fund!r} is not listed in funds",
            )
        reference = node.get("reference")
        if not reference:
            p.err(f"{path}.reference", "需注明依据条款", "must name the clause it implements")
        need = node.get("need")
        if not isinstance(need, str) or not need:
            p.err(f"{path}.need", "需注明所满足的需要（need）", "must name the need it pays for")
        if "eligible" not in node:
            p.err(f"{path}.eligible", "缺少资格条件", "is required")
        eligible = compiler.compile(node.get("eligible", {"all": []}), f"{path}.eligible")
        amount = _amount(p, node.get("amount"), f"{path}.amount", kind, valid_from, defaults)
        rules.append(
            Rule(
                id=rid,
                name=_name(node),
                need=str(need),
                kind=kind,
                eligible=eligible,
                amount=amount,
                pay_to=str(pay_to),
                fund=str(fund),
                reference=str(reference or ""),
                valid_from=node.get("valid_from"),
                valid_to=node.get("valid_to"),
                order=i,
            )
        )

    ids = {r.id for r in rules}
    combos: list[Combination] = []
    for i, node in enumerate(raw.get("combinations") or []):
        path = f"combinations[{i}]"
        kinds = [k for k in ("highest", "exclude", "cap", "stack") if k in (node or {})]
        if len(kinds) != 1:
            p.err(
                path,
                "应声明且只声明 highest、exclude、cap、stack 之一",
                "must declare exactly one of highest, exclude, cap, stack",
            )
            continue
        kind = kinds[0]
        members = node[kind]
        if not isinstance(members, list) or not members:
            p.err(f"{path}.{kind}", "应为规则 id 列表", "must be a list of rule ids")
            continue
        for m in members:
            if m not in ids:
                p.err(f"{path}.{kind}", f"未知的规则 {m!r}", f"unknown rule {m!r}")
        if not node.get("reference"):
            p.err(f"{path}.reference", "需注明依据条款", "must name the clause it implements")
        when = None
        with_rule = node.get("with_rule")
        cap: tuple[Dated, ...] = ()
        if kind == "exclude":
            if "when" in node:
                when = compiler.compile(node["when"], f"{path}.when")
            elif with_rule not in ids:
                p.err(
                    f"{path}.when",
                    "exclude 需给出 when 条件或 with_rule",
                    "exclude needs a when condition or a with_rule",
                )
        if kind == "cap":
            if "yuan" not in node:
                p.err(f"{path}.yuan", "cap 需给出上限金额", "a cap needs its amount")
            else:
                cap = p.dated(node["yuan"], f"{path}.yuan", valid_from)
            for m in members:
                if m in ids and next(r for r in rules if r.id == m).kind != "one_time":
                    p.err(
                        f"{path}.cap",
                        f"上限只约束一次性项目，{m} 不是",
                        f"a cap binds one-time items; {m} is not one",
                    )
        member_kinds = {r.kind for r in rules if r.id in members}
        if kind == "highest" and len(member_kinds) > 1:
            p.err(
                f"{path}.highest",
                "同一组内的规则应为同一种类",
                "rules of one group must be of one kind",
            )
        if kind in ("highest", "stack") and len(members) < 2:
            p.err(f"{path}.{kind}", "至少需要两条规则", "needs at least two rules")
        combos.append(
            Combination(
                kind=kind,
                rules=tuple(str(m) for m in members),
                name=_name(node),
                reference=str(node.get("reference") or ""),
                when=when,
                with_rule=with_rule,
                cap=cap,
            )
        )

    rewards: list[Reward] = []
    for i, node in enumerate(raw.get("rewards") or []):
        path = f"rewards[{i}]"
        rid = str(node.get("id") or f"#{i}")
        fund = node.get("fund")
        if fund not in funds:
            p.err(
                f"{path}.fund",
                f"资金来源 {fund!r} 未在 funds 中列出",
                f"fund {fund!r} is not listed in funds",
            )
        rewards.append(
            Reward(
                id=rid,
                name=_name(node),
                min_beds=p.need(node, "min_beds", f"{path}.", int) or 0,
                min_satisfaction_pct=p.need(node, "min_satisfaction_pct", f"{path}.", int) or 0,
                fen=p.money(node.get("yuan"), f"{path}.yuan"),
                fund=str(fund),
                reference=str(node.get("reference") or ""),
            )
        )

    p.errors.extend(compiler.errors)
    if not p.errors:
        _check_needs(p, rules, combos, code)
    if status == "active":
        for path, message in p.blanks:
            p.errors.append(
                (
                    path,
                    T(
                        f"生效的版本不能有空缺：{message.zh}",
                        f"an active version cannot have blanks: {message.en}",
                    ),
                )
            )
    if p.errors:
        raise PolicyInvalid(p.errors)
    vouchers = raw.get("vouchers") or {}
    application = raw.get("application") or {}
    if vouchers.get("rollover", "none") != "none":
        # the only mode implemented; a policy asking for another must not pass silently
        p.errors.append(
            (
                "vouchers.rollover",
                T("目前仅支持 none（不结转）", "only `none` (no roll-over) is supported"),
            )
        )
        raise PolicyInvalid(p.errors)
    return PolicyDoc(
        code=code,
        version=version,
        title=title,
        title_en=str(raw.get("title_en") or title),
        status=status,
        regions=regions,
        valid_from=valid_from,
        valid_to=valid_to,
        funds=funds,
        rules=tuple(rules),
        combinations=tuple(combos),
        rewards=tuple(rewards),
        raw=raw,
        hash=document_hash(raw),
        blanks=tuple(p.blanks),
        source=raw.get("source"),
        voucher_grace_days=int(vouchers.get("redeem_grace_days", 15)),
        rollover=str(vouchers.get("rollover", "none")),
        checklists={k: tuple(v) for k, v in (application.get("checklists") or {}).items()},
    )


def _amount(p: _Parser, node: Any, path: str, kind: str, start: date, defaults: Mapping) -> Amount:
    if not isinstance(node, dict):
        p.err(path, "缺少金额", "is required")
        return Amount(kind, ())
    proration = node.get("proration", defaults.get("proration", "by_day"))
    if proration not in PRORATION:
        p.err(
            f"{path}.proration",
            f"应为 {'/'.join(PRORATION)}",
            f"must be one of {', '.join(PRORATION)}",
        )
    if kind in ("monthly", "annual", "per_visit"):
        if kind not in node:
            p.err(
                f"{path}.{kind}",
                f"{kind} 规则需给出 {kind} 金额",
                f"a {kind} rule needs a {kind} amount",
            )
            return Amount(kind, ())
        values = p.dated(node[kind], f"{path}.{kind}", start)
        min_visits = int(node.get("min_visits", 0))
        max_visits = node.get("max_visits")
        below = node.get("below_minimum", "pay")
        if below not in ("pay", "refuse"):
            p.err(f"{path}.below_minimum", "应为 pay 或 refuse", "must be pay or refuse")
        return Amount(
            kind,
            values,
            proration=str(proration),
            min_visits=min_visits,
            max_visits=int(max_visits) if max_visits is not None else None,
            items=tuple(node.get("items") or ()),
            below_minimum=str(below),
        )
    # one_time: the actual cost of modifications of the given kinds, up to a cap
    spec = node.get("actual_cost")
    if not isinstance(spec, dict):
        p.err(
            f"{path}.actual_cost",
            "一次性规则需给出 actual_cost",
            "a one_time rule needs actual_cost",
        )
        return Amount(kind, ())
    kinds = tuple(spec.get("kinds") or ())
    for k in kinds:
        if k not in COST_KINDS:
            p.err(
                f"{path}.actual_cost.kinds",
                f"未知的改造类型 {k!r}",
                f"unknown modification kind {k!r}",
            )
    if "cap" not in spec:
        p.err(f"{path}.actual_cost.cap", "需给出上限", "needs a cap")
        return Amount(kind, ())
    return Amount(
        kind,
        p.dated(spec["cap"], f"{path}.actual_cost.cap", start),
        cost_kinds=kinds,
        counts_prior=tuple(spec.get("counts_prior") or ()),
    )


def _combined(a: Rule, b: Rule, combos: tuple[Combination, ...] | list[Combination]) -> bool:
    for c in combos:
        if a.id in c.rules and b.id in c.rules and c.kind in ("highest", "cap", "stack"):
            return True
        if c.kind == "exclude" and c.with_rule and {a.id, b.id} <= {*c.rules, c.with_rule}:
            return True
    return False


def _overlap(a: Rule, b: Rule) -> bool:
    return (a.valid_to is None or b.valid_from is None or b.valid_from <= a.valid_to) and (
        b.valid_to is None or a.valid_from is None or a.valid_from <= b.valid_to
    )


def _check_needs(p: _Parser, rules: list[Rule], combos: list[Combination], code: str) -> None:
    from services.subsidy.policies.predicates import jointly_satisfiable

    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            if a.need != b.need or _combined(a, b, combos) or not _overlap(a, b):
                continue
            witness = jointly_satisfiable([a.eligible, b.eligible], code)
            if witness is None:
                continue  # the two can never grant on the same day
            p.err(
                f"rules[{b.id}].need",
                f"规则 {a.id} 与 {b.id} 可能同时为同一需要（{a.need}）发放"
                f"（如：{_describe(witness)}），"
                "但未声明组合方式（highest / exclude / cap / stack）",
                f"rules {a.id} and {b.id} can both grant for need {a.need!r} on the same day "
                f"(e.g. {_describe(witness)}) without a declared combination "
                "(highest / exclude / cap / stack)",
            )


def _describe(day: Any) -> str:
    cats = ",".join(sorted(day.categories)) or "-"
    return (
        f"age {day.age}, level {day.level}, categories {cats}, "
        f"{day.arrangement}, bed {'yes' if day.bed else 'no'}"
    )
