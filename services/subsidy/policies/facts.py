"""The facts a rule may look at: what the registry (and subsidy's own records) say about an
elder, with the dates they hold. Pure data — loaded by ``services/subsidy/facts/service.py``,
written by hand in case tables, synthesised by the validator's witness search.

``day_facts(facts, day)`` is the elder as they were on one day; rules are predicates over it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from shared.pii import age_on


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    valid_from: date
    valid_to: date | None = None
    grade: int | None = None
    receives_nursing_subsidy: bool = False

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class Assessment:
    level: int
    assessed_on: date
    valid_until: date | None = None
    dementia: bool = False


@dataclass(frozen=True, slots=True)
class Span:
    """Days ``start`` … ``end`` inclusive (``end`` None: still open)."""

    start: date
    end: date | None = None

    def holds(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class Bed:
    bed_id: uuid.UUID
    org_id: uuid.UUID
    active: tuple[Span, ...]  # from the bed's lifecycle events (suspensions are gaps)
    policy_code: str | None = None

    def active_on(self, day: date) -> bool:
        return any(s.holds(day) for s in self.active)


@dataclass(frozen=True, slots=True)
class Modification:
    bed_id: uuid.UUID
    kind: str  # aging_adaptation | smart
    cost_fen: int
    done_on: date


@dataclass(frozen=True, slots=True)
class Benefit:
    """A subsidy received outside this platform (e.g. an earlier home-adaptation grant)."""

    code: str
    amount_fen: int
    received_on: date


@dataclass(frozen=True, slots=True)
class Application:
    policy_code: str
    approved_on: date
    ends_on: date | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    visit_id: uuid.UUID
    org_id: uuid.UUID
    service_day: date
    item_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Grant:
    """An amount already granted in an earlier month (one-time and annual lines are paid
    once: what is payable now is what is due less what was granted)."""

    policy_code: str
    rule: str
    month: date
    amount_fen: int


@dataclass(frozen=True, slots=True)
class Move:
    """From ``valid_from`` on (until the next one), the elder's hukou and residence: a row of
    the registry's residence history (the first, as registered, holds from birth)."""

    valid_from: date
    hukou_region: str
    residence_region: str


@dataclass  # not frozen: a run builds 100 000 of them, and frozen __init__ costs 3×
class ElderFacts:
    elder_id: uuid.UUID
    birth_date: date
    hukou_region: str
    residence_region: str
    living_arrangement: str = "with_family"
    lives_at_home: bool = True
    deceased_on: date | None = None
    categories: tuple[Category, ...] = ()
    assessments: tuple[Assessment, ...] = ()
    beds: tuple[Bed, ...] = ()
    modifications: tuple[Modification, ...] = ()
    benefits: tuple[Benefit, ...] = ()
    applications: tuple[Application, ...] = ()
    visits: tuple[Visit, ...] = ()
    grants: tuple[Grant, ...] = ()
    disqualified_on: date | None = None  # fraud: lifetime disqualification from this day
    name: str | None = None
    # The residence history, oldest first — only for an elder whose place changes on some day
    # the facts cover (or later); empty: ``hukou_region``/``residence_region`` (today's) hold
    # on every day, as for almost everyone.
    moves: tuple[Move, ...] = ()

    def place_on(self, day: date) -> tuple[str, str]:
        """(hukou, residence) in force on ``day``."""
        moves = self.moves
        if not moves:
            return self.hukou_region, self.residence_region
        held = moves[0]
        for m in moves:
            if m.valid_from <= day:
                held = m
        return held.hukou_region, held.residence_region

    def hukou_regions(self, first: date, last: date) -> tuple[str, ...]:
        """Every hukou region in force on some day of ``first`` … ``last``, in day order
        (which policies cover the elder that month: a move mid-month can make it two)."""
        out = [self.place_on(first)[0]]
        for m in self.moves:
            if first < m.valid_from <= last:
                out.append(m.hukou_region)
        return tuple(dict.fromkeys(out))

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy (frozen with a run's decision records)."""
        return _plain(self)

    def change_points(self) -> set[date]:
        """Days on which some fact may change (a new segment starts)."""
        points: set[date] = set()
        add = points.add
        if self.deceased_on:
            add(self.deceased_on)
        if self.disqualified_on:
            add(self.disqualified_on)
        for c in self.categories:
            add(c.valid_from)
            if c.valid_to:
                add(c.valid_to + ONE_DAY)
        for a in self.assessments:
            add(a.assessed_on)
            if a.valid_until:
                add(a.valid_until + ONE_DAY)
        for b in self.beds:
            for s in b.active:
                add(s.start)
                if s.end:
                    add(s.end + ONE_DAY)
        for ap in self.applications:
            add(ap.approved_on)
            if ap.ends_on:
                add(ap.ends_on + ONE_DAY)
        for m in self.moves:
            add(m.valid_from)
        return points


ONE_DAY = timedelta(days=1)


@dataclass(slots=True)
class Day:
    """The elder on one day: what predicates read."""

    day: date
    age: int
    hukou: str
    residence: str
    arrangement: str
    at_home: bool
    categories: Mapping[str, Category]
    assessment: Assessment | None  # the one in force (latest assessed on or before the day)
    level: int | None  # its level, None when there is none or it has expired
    bed: Bed | None  # a bed active that day
    approved: frozenset[str]  # policy codes with an approved application in force
    nursing_subsidy: bool  # receives the disability nursing subsidy (残疾人护理补贴)
    orgs_barred: Mapping[uuid.UUID, date] = field(default_factory=dict)

    @property
    def dementia(self) -> bool:
        return bool(self.assessment and self.assessment.dementia)


def _rank(c: Category) -> tuple:
    return (
        c.receives_nursing_subsidy,
        -(c.grade or 9),
        c.valid_to or date.max,
        -c.valid_from.toordinal(),
    )


def assessment_in_force(assessments: tuple[Assessment, ...], day: date) -> Assessment | None:
    best: Assessment | None = None
    for a in assessments:
        if a.assessed_on <= day and (best is None or _arank(a) > _arank(best)):
            best = a
    return best


def _arank(a: Assessment) -> tuple:
    # latest assessment wins; two on one day: the higher level (order-independent)
    return (a.assessed_on, a.level, a.valid_until or date.max, a.dementia)


def day_facts(facts: ElderFacts, day: date) -> Day:
    cats: dict[str, Category] = {}
    for c in facts.categories:
        if c.valid_on(day) and (c.code not in cats or _rank(c) > _rank(cats[c.code])):
            cats[c.code] = c  # two overlapping records of one code: the same pick, any order
    assessment = assessment_in_force(facts.assessments, day)
    level = None
    if assessment is not None and (assessment.valid_until is None or day <= assessment.valid_until):
        level = assessment.level
    active = [b for b in facts.beds if b.active_on(day)]
    bed = min(active, key=lambda b: str(b.bed_id)) if active else None
    approved = frozenset(
        a.policy_code
        for a in facts.applications
        if a.approved_on <= day and (a.ends_on is None or day <= a.ends_on)
    )
    disabled = cats.get("disabled")
    hukou, residence = facts.place_on(day)
    return Day(
        day=day,
        age=age_on(facts.birth_date, day),
        hukou=hukou,
        residence=residence,
        arrangement=facts.living_arrangement,
        at_home=facts.lives_at_home,
        categories=cats,
        assessment=assessment,
        level=level,
        bed=bed,
        approved=approved,
        nursing_subsidy=bool(disabled and disabled.receives_nursing_subsidy),
    )


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {
            k: _plain(getattr(value, k))
            for k in value.__dataclass_fields__
            if getattr(value, k) not in (None, (), False) or k in ("elder_id", "birth_date")
        }
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, date | uuid.UUID):
        return str(value)
    return value


def birthday_in(birth: date, start: date, end: date) -> date | None:
    """The elder's birthday between ``start`` and ``end`` inclusive (29 Feb → 1 Mar)."""
    for year in {start.year, end.year}:
        try:
            b = birth.replace(year=year)
        except ValueError:
            b = date(year, 3, 1)
        if start <= b <= end:
            return b
    return None


def _d(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def facts_from_json(raw: Mapping[str, Any]) -> ElderFacts:
    """A frozen snapshot (``orjson.dumps(ElderFacts)``) back into facts."""
    return ElderFacts(
        elder_id=uuid.UUID(raw["elder_id"]),
        birth_date=date.fromisoformat(raw["birth_date"]),
        hukou_region=raw["hukou_region"],
        residence_region=raw["residence_region"],
        living_arrangement=raw.get("living_arrangement", "with_family"),
        lives_at_home=raw.get("lives_at_home", True),
        deceased_on=_d(raw.get("deceased_on")),
        categories=tuple(
            Category(
                c["code"],
                date.fromisoformat(c["valid_from"]),
                _d(c.get("valid_to")),
                c.get("grade"),
                c.get("receives_nursing_subsidy", False),
            )
            for c in raw.get("categories") or ()
        ),
        assessments=tuple(
            Assessment(
                a["level"],
                date.fromisoformat(a["assessed_on"]),
                _d(a.get("valid_until")),
                a.get("dementia", False),
            )
            for a in raw.get("assessments") or ()
        ),
        beds=tuple(
            Bed(
                uuid.UUID(b["bed_id"]),
                uuid.UUID(b["org_id"]),
                tuple(Span(date.fromisoformat(s["start"]), _d(s.get("end"))) for s in b["active"]),
                b.get("policy_code"),
            )
            for b in raw.get("beds") or ()
        ),
        modifications=tuple(
            Modification(
                uuid.UUID(m["bed_id"]), m["kind"], m["cost_fen"], date.fromisoformat(m["done_on"])
            )
            for m in raw.get("modifications") or ()
        ),
        benefits=tuple(
            Benefit(b["code"], b["amount_fen"], date.fromisoformat(b["received_on"]))
            for b in raw.get("benefits") or ()
        ),
        applications=tuple(
            Application(
                a["policy_code"], date.fromisoformat(a["approved_on"]), _d(a.get("ends_on"))
            )
            for a in raw.get("applications") or ()
        ),
        visits=tuple(
            Visit(
                uuid.UUID(v["visit_id"]),
                uuid.UUID(v["org_id"]),
                date.fromisoformat(v["service_day"]),
                tuple(v.get("item_codes") or ()),
            )
            for v in raw.get("visits") or ()
        ),
        grants=tuple(
            Grant(g["policy_code"], g["rule"], date.fromisoformat(g["month"]), g["amount_fen"])
            for g in raw.get("grants") or ()
        ),
        disqualified_on=_d(raw.get("disqualified_on")),
        name=raw.get("name"),
        moves=tuple(
            Move(date.fromisoformat(m["valid_from"]), m["hukou_region"], m["residence_region"])
            for m in raw.get("moves") or ()
        ),
    )
