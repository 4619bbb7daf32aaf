"""The eligibility language of policy documents: small, declarative, no ``eval``.

A predicate is a YAML mapping with one key — an atom over the elder's facts on a day, or a
combinator — or the name of a definition in the document's ``definitions``::

    {all: [local_hukou, {age_at_least: 60}, {any: [{category: subsistence_allowance},
                                                   {category: extreme_poverty}]}]}

Atoms (each reads one fact of ``facts.Day``):

    age_at_least: N          age_below: N
    hukou_in: [prefix…] | $regions          residence_in: [prefix…] | $regions
    category: code | {code, grade_at_most, grade_at_least}     any_category: [code…]
    level_at_least: 0..4     level_in: [0..4…]     dementia: true|false
    living_arrangement: [alone|couple|with_family|with_disabled_dependant…]
    lives_at_home: bool      bed_active: bool      receives_nursing_subsidy: bool
    application_approved: bool   (an approved application under this policy's code)

Combinators: ``all: […]``, ``any: […]``, ``not: p``. ``compile_predicate`` turns a document
node into a ``Pred``: ``test(day)`` is the fast path (runs), ``explain(day)`` also says which
facts decided it — the text of a grant's explanation or of a refusal notice. Every atom also
names the values worth trying (``dims``), so the validator can search for a day on which two
rules both grant (``witnesses``).
"""

from __future__ import annotations

import itertools
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.subsidy.policies.facts import Assessment, Bed, Category, Day, Span
from shared.i18n import T
from shared.regions import region_name

CATEGORY_NAMES: dict[str, T] = {
    "extreme_poverty": T("特困供养（三无）", "extreme poverty (三无)"),
    "subsistence_allowance": T("低保", "subsistence allowance (低保)"),
    "low_income": T("低收入", "low income"),
    "entitled_group": T("重点优抚对象", "entitled group (重点优抚)"),
    "disabled": T("残疾", "disability"),
    "martyr_family": T("烈属", "martyr's family"),
    "empty_nest": T("空巢", "empty nest"),
}
LEVEL_NAMES: dict[int, T] = {
    0: T("能力完好", "intact"),
    1: T("轻度失能", "mild disability"),
    2: T("中度失能", "moderate disability"),
    3: T("重度失能", "severe disability"),
    4: T("完全失能", "total disability"),
}
ARRANGEMENTS: dict[str, T] = {
    "alone": T("独居", "living alone"),
    "couple": T("与配偶同住", "living with a spouse"),
    "with_family": T("与家人同住", "living with family"),
    "with_disabled_dependant": T("仅与残疾子女或配偶同住", "only with a disabled child or spouse"),
}

# What the missed-entitlements report calls the step an elder is missing.
STEP_BED = "no_bed"
STEP_APPLICATION = "no_application"
STEP_ASSESSMENT = "no_assessment"
STEP_REASSESSMENT = "reassessment_overdue"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text: T
    step: str | None = None  # a step the elder (or an officer) can take


class PolicyInvalid(Exception):
    """A policy document that must not be used; ``errors`` are (field, message) pairs."""

    def __init__(self, errors: Sequence[tuple[str, T]]) -> None:
        super().__init__("; ".join(f"{f}: {m.en}" for f, m in errors))
        self.errors = list(errors)


class Pred(ABC):
    """A compiled predicate: ``fn`` decides (the fast path: plain closures, no generators),
    ``explain`` decides and says why (for written decisions)."""

    dims: Mapping[str, tuple[Any, ...]] = {}
    fn: Callable[[Day], bool]

    def test(self, d: Day) -> bool:
        return self.fn(d)

    @abstractmethod
    def explain(self, d: Day) -> tuple[bool, list[Reason]]: ...

    def atoms(self) -> Iterator[Pred]:
        yield self


@dataclass
class Atom(Pred):
    name: str
    fn: Callable[[Day], bool]
    describe: Callable[[Day, bool], Reason]
    dims: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def explain(self, d: Day) -> tuple[bool, list[Reason]]:
        ok = self.fn(d)
        return ok, [self.describe(d, ok)]


def _all(fns: tuple[Callable[[Day], bool], ...]) -> Callable[[Day], bool]:
    if len(fns) == 1:
        return fns[0]

    def fn(d: Day) -> bool:
        for f in fns:  # noqa: SIM110 - a plain loop: all() over a generator costs 2× here
            if not f(d):
                return False
        return True

    return fn


def _any(fns: tuple[Callable[[Day], bool], ...]) -> Callable[[Day], bool]:
    if len(fns) == 1:
        return fns[0]

    def fn(d: Day) -> bool:
        for f in fns:  # noqa: SIM110 - a plain loop: any() over a generator costs 2× here
            if f(d):
                return True
        return False

    return fn


@dataclass
class All(Pred):
    parts: tuple[Pred, ...]

    def __post_init__(self) -> None:
        self.fn = _all(tuple(p.fn for p in self.parts))

    def explain(self, d: Day) -> tuple[bool, list[Reason]]:
        used: list[Reason] = []
        failed: list[Reason] = []
        for p in self.parts:
            ok, reasons = p.explain(d)
            (used if ok else failed).extend(reasons)
        return (not failed), (failed or used)

    def atoms(self) -> Iterator[Pred]:
        for p in self.parts:
            yield from p.atoms()


@dataclass
class Any_(Pred):
    parts: tuple[Pred, ...]

    def __post_init__(self) -> None:
        self.fn = _any(tuple(p.fn for p in self.parts))

    def explain(self, d: Day) -> tuple[bool, list[Reason]]:
        failed: list[Reason] = []
        for p in self.parts:
            ok, reasons = p.explain(d)
            if ok:
                return True, reasons
            failed.extend(reasons)
        if len(failed) <= 1:
            return False, failed
        joined = T("；或".join(r.text.zh for r in failed), "; or ".join(r.text.en for r in failed))
        # a step fixes the whole "any" only when every branch misses that same step
        steps = {r.step for r in failed}
        step = steps.pop() if len(steps) == 1 else None
        return False, [Reason("none_of", joined, step)]

    def atoms(self) -> Iterator[Pred]:
        for p in self.parts:
            yield from p.atoms()


@dataclass
class Not(Pred):
    part: Pred

    def __post_init__(self) -> None:
        inner = self.part.fn
        self.fn = lambda d: not inner(d)

    def explain(self, d: Day) -> tuple[bool, list[Reason]]:
        ok, reasons = self.part.explain(d)
        return (not ok), reasons

    def atoms(self) -> Iterator[Pred]:
        yield from self.part.atoms()


class Always(Pred):
    def __init__(self) -> None:
        self.fn = lambda d: True

    def explain(self, d: Day) -> tuple[bool, list[Reason]]:
        return True, []


# ---------------------------------------------------------------------------------- atoms


def _cat_text(c: Category) -> T:
    name = CATEGORY_NAMES.get(c.code, T(c.code, c.code))
    until_zh = f"至 {c.valid_to}" if c.valid_to else "起长期有效"
    until_en = f"until {c.valid_to}" if c.valid_to else "open-ended"
    grade_zh = f"{c.grade}级" if c.grade else ""
    grade_en = f" grade {c.grade}" if c.grade else ""
    return T(
        f"{name.zh}{grade_zh}（{c.valid_from} {until_zh}）",
        f"{name.en}{grade_en} ({c.valid_from}, {until_en})",
    )


def _level_text(d: Day) -> tuple[T, str | None]:
    a = d.assessment
    if a is None:
        return T("无能力评估记录", "no capability assessment on record"), STEP_ASSESSMENT
    if d.level is None:
        return (
            T(
                f"能力评估已于 {a.valid_until} 过期，需复评",
                f"assessment expired on {a.valid_until}",
            ),
            STEP_REASSESSMENT,
        )
    name = LEVEL_NAMES[d.level]
    dem_zh = "，含失智" if a.dementia else ""
    dem_en = ", with dementia" if a.dementia else ""
    return (
        T(
            f"失能等级 {d.level}（{name.zh}{dem_zh}，{a.assessed_on} 评估）",
            f"disability level {d.level} ({name.en}{dem_en}, assessed {a.assessed_on})",
        ),
        None,
    )


def _regions_text(prefixes: tuple[str, ...]) -> str:
    return "、".join(f"{p}（{region_name(p) or p}）" for p in prefixes) or "—"


def _bool_arg(path: str, value: Any, errors: list) -> bool:
    if not isinstance(value, bool):
        errors.append((path, T("应为 true 或 false", "must be true or false")))
        return True
    return value


def _int_arg(path: str, value: Any, errors: list, lo: int = 0, hi: int = 150) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        errors.append((path, T(f"应为 {lo}–{hi} 的整数", f"must be an integer {lo}–{hi}")))
        return lo
    return value


def _age_at_least(n: int) -> Atom:
    def describe(d: Day, ok: bool) -> Reason:
        if ok:
            return Reason(
                "age",
                T(f"{d.day} 时年满 {n} 周岁（{d.age} 岁）", f"aged {d.age} on {d.day} (≥ {n})"),
            )
        return Reason(
            "under_age",
            T(f"{d.day} 时未满 {n} 周岁（{d.age} 岁）", f"aged {d.age} on {d.day}: under {n}"),
        )

    return Atom("age_at_least", lambda d: d.age >= n, describe, {"age": (n - 1, n)})


def _age_below(n: int) -> Atom:
    def describe(d: Day, ok: bool) -> Reason:
        if ok:
            return Reason(
                "age",
                T(f"{d.day} 时 {d.age} 岁，未满 {n} 周岁", f"aged {d.age} on {d.day} (< {n})"),
            )
        return Reason(
            "over_age",
            T(f"{d.day} 时已满 {n} 周岁（{d.age} 岁）", f"aged {d.age} on {d.day}: {n} or over"),
        )

    return Atom("age_below", lambda d: d.age < n, describe, {"age": (n - 1, n)})


def _region_atom(which: str, prefixes: tuple[str, ...]) -> Atom:
    label = T("户籍", "hukou") if which == "hukou" else T("居住地", "residence")

    def value(d: Day) -> str:
        return d.hukou if which == "hukou" else d.residence

    def hukou_fn(d: Day) -> bool:
        return d.hukou.startswith(prefixes)

    def residence_fn(d: Day) -> bool:
        return d.residence.startswith(prefixes)

    fn = hukou_fn if which == "hukou" else residence_fn

    def describe(d: Day, ok: bool) -> Reason:
        v = value(d)
        if not prefixes:
            return Reason(
                "region_unset",
                T("政策区域尚未设定（草案）", "the policy's region is not set (draft)"),
            )
        where = f"{v}（{region_name(v) or v}）"
        if ok:
            return Reason(
                f"{which}_region",
                T(f"{label.zh} {where} 在政策区域内", f"{label.en} {v} is in the policy's region"),
            )
        return Reason(
            f"{which}_outside",
            T(
                f"{label.zh} {where} 不在政策区域 {_regions_text(prefixes)} 内",
                f"{label.en} {v} is outside the policy's region ({', '.join(prefixes)})",
            ),
        )

    return Atom(f"{which}_in", fn, describe, {which: (*prefixes, "000000")})


def _category(code: str, grade_at_most: int | None, grade_at_least: int | None) -> Atom:
    name = CATEGORY_NAMES.get(code, T(code, code))

    def fn(d: Day) -> bool:
        c = d.categories.get(code)
        if c is None:
            return False
        if grade_at_most is not None and (c.grade is None or c.grade > grade_at_most):
            return False
        return not (grade_at_least is not None and (c.grade is None or c.grade < grade_at_least))

    def describe(d: Day, ok: bool) -> Reason:
        c = d.categories.get(code)
        if ok and c is not None:
            return Reason("category", _cat_text(c))
        if c is None:
            # not a step: a category is a finding about the elder's circumstances
            return Reason(
                f"no_{code}", T(f"{d.day} 无有效的{name.zh}认定", f"no {name.en} valid on {d.day}")
            )
        want_zh = f"{grade_at_most}级及以上" if grade_at_most else f"{grade_at_least}级及以下"
        return Reason(
            f"{code}_grade",
            T(
                f"{_cat_text(c).zh}，不符合等级要求（需{want_zh}）",
                f"{_cat_text(c).en}: grade not within the rule",
            ),
        )

    grades: tuple[Any, ...] = (None, "present")
    if grade_at_most is not None or grade_at_least is not None:
        grades = (None, 1, 2, 3, 4)
    return Atom("category", fn, describe, {f"cat:{code}": grades})


def _level_at_least(n: int) -> Atom:
    def describe(d: Day, ok: bool) -> Reason:
        text, step = _level_text(d)
        if ok or d.level is None:
            return Reason("level" if ok else (step or "no_level"), text, None if ok else step)
        want = LEVEL_NAMES[n]
        return Reason(
            "level_below",
            T(f"{text.zh}，低于{want.zh}（{n}级）", f"{text.en}: below {want.en} (level {n})"),
        )

    return Atom(
        "level_at_least",
        lambda d: d.level is not None and d.level >= n,
        describe,
        {"level": (None, 0, 1, 2, 3, 4)},
    )


def _level_in(levels: frozenset[int]) -> Atom:
    def describe(d: Day, ok: bool) -> Reason:
        text, step = _level_text(d)
        if ok or d.level is None:
            return Reason("level" if ok else (step or "no_level"), text, None if ok else step)
        want = "、".join(LEVEL_NAMES[x].zh for x in sorted(levels))
        want_en = ", ".join(LEVEL_NAMES[x].en for x in sorted(levels))
        return Reason("level_outside", T(f"{text.zh}，不属于{want}", f"{text.en}: not {want_en}"))

    return Atom("level_in", lambda d: d.level in levels, describe, {"level": (None, 0, 1, 2, 3, 4)})


def _flag(
    name: str,
    want: bool,
    get: Callable[[Day], bool],
    yes: T,
    no: T,
    dim: str,
    step: str | None = None,
) -> Atom:
    def describe(d: Day, ok: bool) -> Reason:
        actual = get(d)
        text = yes if actual else no
        return Reason(
            name if ok else f"not_{name}", text, None if ok else (step if not actual else None)
        )

    return Atom(name, lambda d: get(d) is want, describe, {dim: (False, True)})


def _arrangement(values: frozenset[str]) -> Atom:
    def describe(d: Day, ok: bool) -> Reason:
        got = ARRANGEMENTS.get(d.arrangement, T(d.arrangement, d.arrangement))
        if ok:
            return Reason(
                "living_arrangement", T(f"居住状况：{got.zh}", f"living arrangement: {got.en}")
            )
        want = "、".join(ARRANGEMENTS[v].zh for v in sorted(values))
        want_en = ", ".join(ARRANGEMENTS[v].en for v in sorted(values))
        return Reason(
            "living_arrangement",
            T(f"居住状况为{got.zh}（需为{want}）", f"{got.en} (the rule needs: {want_en})"),
        )

    return Atom(
        "living_arrangement",
        lambda d: d.arrangement in values,
        describe,
        {"arrangement": tuple(ARRANGEMENTS)},
    )


def _bed(want: bool) -> Atom:
    def describe(d: Day, ok: bool) -> Reason:
        if d.bed is not None:
            start = next((s.start for s in d.bed.active if s.holds(d.day)), None)
            return Reason(
                "bed_active" if ok else "has_bed",
                T(f"家庭养老床位 {start} 起在用", f"home care bed active since {start}"),
            )
        return Reason(
            "no_bed" if want else "bed_active",
            T(f"{d.day} 无在用的家庭养老床位", f"no active home care bed on {d.day}"),
            STEP_BED if want else None,
        )

    return Atom(
        "bed_active", lambda d: (d.bed is not None) is want, describe, {"bed": (False, True)}
    )


def _application(code: str, want: bool) -> Atom:
    def describe(d: Day, ok: bool) -> Reason:
        if code in d.approved:
            return Reason("application_approved", T("申请已核准", "application approved"))
        return Reason(
            "no_application",
            T("未提出申请或申请尚未核准（篇七 申请程序）", "no approved application"),
            STEP_APPLICATION if want else None,
        )

    return Atom(
        "application_approved",
        lambda d: (code in d.approved) is want,
        describe,
        {"approved": (False, True)},
    )


# ----------------------------------------------------------------------------- compiler

ATOMS = (
    "age_at_least",
    "age_below",
    "hukou_in",
    "residence_in",
    "category",
    "any_category",
    "level_at_least",
    "level_in",
    "dementia",
    "living_arrangement",
    "lives_at_home",
    "bed_active",
    "receives_nursing_subsidy",
    "application_approved",
)


@dataclass
class Compiler:
    definitions: Mapping[str, Any]
    regions: tuple[str, ...]
    policy_code: str
    errors: list[tuple[str, T]] = field(default_factory=list)
    _defs: dict[str, Pred] = field(default_factory=dict)
    _resolving: set[str] = field(default_factory=set)

    def error(self, path: str, zh: str, en: str) -> Pred:
        self.errors.append((path, T(zh, en)))
        return Always()

    def compile(self, node: Any, path: str) -> Pred:
        if isinstance(node, str):
            return self._ref(node, path)
        if not isinstance(node, dict) or len(node) != 1:
            return self.error(
                path,
                "条件应为只有一个键的映射，或定义的名称",
                "a condition is a one-key mapping or a definition name",
            )
        ((key, arg),) = node.items()
        sub = f"{path}.{key}"
        if key in ("all", "any"):
            if not isinstance(arg, list) or not arg:
                return self.error(sub, "应为非空列表", "must be a non-empty list")
            parts = tuple(self.compile(p, f"{sub}[{i}]") for i, p in enumerate(arg))
            return All(parts) if key == "all" else Any_(parts)
        if key == "not":
            return Not(self.compile(arg, sub))
        return self._atom(key, arg, sub)

    def _ref(self, name: str, path: str) -> Pred:
        if name in self._defs:
            return self._defs[name]
        if name not in self.definitions:
            return self.error(path, f"未知的定义 {name!r}", f"unknown definition {name!r}")
        if name in self._resolving:
            return self.error(
                path, f"定义 {name!r} 循环引用", f"definition {name!r} refers to itself"
            )
        self._resolving.add(name)
        pred = self.compile(self.definitions[name], f"definitions.{name}")
        self._resolving.discard(name)
        self._defs[name] = pred
        return pred

    def _prefixes(self, arg: Any, path: str) -> tuple[str, ...]:
        if arg == "$regions":
            return self.regions
        if not isinstance(arg, list) or not all(isinstance(p, str | int) for p in arg):
            self.error(
                path,
                "应为区划代码前缀列表或 $regions",
                "must be a list of division-code prefixes or $regions",
            )
            return ()
        out = tuple(str(p) for p in arg)
        for p in out:
            if not p.isdigit():
                self.error(path, f"{p!r} 不是区划代码前缀", f"{p!r} is not a division-code prefix")
        return out

    def _atom(self, key: str, arg: Any, path: str) -> Pred:
        e = self.errors
        if key == "age_at_least":
            return _age_at_least(_int_arg(path, arg, e))
        if key == "age_below":
            return _age_below(_int_arg(path, arg, e))
        if key in ("hukou_in", "residence_in"):
            return _region_atom(key.removesuffix("_in"), self._prefixes(arg, path))
        if key == "category":
            spec = {"code": arg} if isinstance(arg, str) else arg
            if not isinstance(spec, dict) or spec.get("code") not in CATEGORY_NAMES:
                return self.error(
                    path,
                    f"未知的类别 {arg!r}（可选：{', '.join(CATEGORY_NAMES)}）",
                    f"unknown category {arg!r} (known: {', '.join(CATEGORY_NAMES)})",
                )
            extra = set(spec) - {"code", "grade_at_most", "grade_at_least"}
            if extra:
                return self.error(
                    path, f"未知的字段 {sorted(extra)}", f"unknown fields {sorted(extra)}"
                )
            most = spec.get("grade_at_most")
            least = spec.get("grade_at_least")
            return _category(
                spec["code"],
                _int_arg(path, most, e, 1, 4) if most is not None else None,
                _int_arg(path, least, e, 1, 4) if least is not None else None,
            )
        if key == "any_category":
            if not isinstance(arg, list) or not arg:
                return self.error(
                    path, "应为非空的类别列表", "must be a non-empty list of categories"
                )
            return Any_(tuple(self._atom("category", c, f"{path}[{i}]") for i, c in enumerate(arg)))
        if key == "level_at_least":
            return _level_at_least(_int_arg(path, arg, e, 0, 4))
        if key == "level_in":
            if not isinstance(arg, list) or not arg:
                return self.error(path, "应为非空的等级列表", "must be a non-empty list of levels")
            return _level_in(frozenset(_int_arg(path, x, e, 0, 4) for x in arg))
        if key == "dementia":
            want = _bool_arg(path, arg, e)
            return _flag(
                "dementia",
                want,
                lambda d: d.dementia,
                T("经诊断失智", "diagnosed dementia"),
                T("无失智诊断", "no dementia diagnosis"),
                "dementia",
            )
        if key == "living_arrangement":
            values = arg if isinstance(arg, list) else [arg]
            bad = [v for v in values if v not in ARRANGEMENTS]
            if bad or not values:
                return self.error(
                    path,
                    f"未知的居住状况 {bad}（可选：{', '.join(ARRANGEMENTS)}）",
                    f"unknown living arrangement {bad} (known: {', '.join(ARRANGEMENTS)})",
                )
            return _arrangement(frozenset(values))
        if key == "lives_at_home":
            want = _bool_arg(path, arg, e)
            return _flag(
                "lives_at_home",
                want,
                lambda d: d.at_home,
                T("居家生活", "lives at home"),
                T("不在家居住（如入住机构）", "does not live at home"),
                "at_home",
            )
        if key == "bed_active":
            return _bed(_bool_arg(path, arg, e))
        if key == "receives_nursing_subsidy":
            want = _bool_arg(path, arg, e)
            return _flag(
                "receives_nursing_subsidy",
                want,
                lambda d: d.nursing_subsidy,
                T(
                    "已享受残疾人护理补贴",
                    "receives the disability nursing subsidy (残疾人护理补贴)",
                ),
                T("未享受残疾人护理补贴", "does not receive the disability nursing subsidy"),
                "nursing",
            )
        if key == "application_approved":
            return _application(self.policy_code, _bool_arg(path, arg, e))
        return self.error(
            path,
            f"未知的条件 {key!r}（可选：{', '.join(ATOMS)}, all, any, not）",
            f"unknown condition {key!r} (known: {', '.join(ATOMS)}, all, any, not)",
        )


# -------------------------------------------------------------------- witness search

_BED = Bed(uuid.UUID(int=1), uuid.UUID(int=2), (Span(date(2000, 1, 1)),))
_DAY = date(2030, 6, 15)


def _dims(preds: Sequence[Pred]) -> dict[str, tuple[Any, ...]]:
    out: dict[str, set[Any]] = {}
    for p in preds:
        for atom in p.atoms():
            for dim, values in atom.dims.items():
                out.setdefault(dim, set()).update(values)
    return {k: tuple(sorted(v, key=repr)) for k, v in sorted(out.items())}


def _synth(assign: Mapping[str, Any], policy_code: str) -> Day:
    cats: dict[str, Category] = {}
    for dim, value in assign.items():
        if dim.startswith("cat:") and value is not None:
            code = dim[4:]
            cats[code] = Category(
                code,
                date(2000, 1, 1),
                None,
                value if isinstance(value, int) else (2 if code == "disabled" else None),
            )
    level = assign.get("level")
    return Day(
        day=_DAY,
        age=assign.get("age", 70),
        hukou=assign.get("hukou", "000000"),
        residence=assign.get("residence", assign.get("hukou", "000000")),
        arrangement=assign.get("arrangement", "with_family"),
        at_home=assign.get("at_home", True),
        categories=cats,
        assessment=Assessment(level, date(2030, 1, 1), None, assign.get("dementia", False))
        if level is not None
        else None,
        level=level,
        bed=_BED if assign.get("bed") else None,
        approved=frozenset({policy_code}) if assign.get("approved") else frozenset(),
        nursing_subsidy=assign.get("nursing", False),
    )


def witnesses(preds: Sequence[Pred], policy_code: str, limit: int = 200_000) -> Iterator[Day]:
    """Days built from every combination of the values the predicates' atoms care about."""
    dims = _dims(preds)
    names = list(dims)
    for n, combo in enumerate(itertools.product(*(dims[k] for k in names))):
        if n >= limit:
            return
        yield _synth(dict(zip(names, combo, strict=True)), policy_code)


def jointly_satisfiable(preds: Sequence[Pred], policy_code: str) -> Day | None:
    """A day on which every predicate holds, if the value grid has one."""
    for d in witnesses(preds, policy_code):
        if all(p.test(d) for p in preds):
            return d
    return None
