"""The rule engine's promises, as properties (hypothesis) over generated facts."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import date, timedelta

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from services.subsidy.policies import engine
from services.subsidy.policies.document import parse_document
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
)
from shared.policy import POLICY_DIR

DOCS = {
    name: parse_document(yaml.safe_load((POLICY_DIR / f"{name}.yaml").read_text("utf-8")))
    for name in ("xm-tongan-family-bed", "sz-home-care-voucher-v2", "sz-home-care-voucher-v1")
}
ORG_A, ORG_B = uuid.UUID(int=10), uuid.UUID(int=11)
CODES = ["extreme_poverty", "subsistence_allowance", "low_income", "entitled_group", "disabled"]
MONTHS = [date(2024, 2, 1), date(2024, 6, 1), date(2025, 2, 1), date(2025, 6, 1)]

days = st.dates(min_value=date(2023, 6, 1), max_value=date(2025, 8, 31))


@st.composite
def elders(draw) -> ElderFacts:
    elder_id = uuid.UUID(int=draw(st.integers(1, 2**64)))
    bed_id = uuid.UUID(int=7)
    cats = []
    for code in draw(st.lists(st.sampled_from(CODES), max_size=4)):
        start = draw(days)
        end = draw(st.one_of(st.none(), st.dates(min_value=start, max_value=date(2026, 1, 1))))
        disabled = code == "disabled"
        cats.append(
            Category(
                code,
                start,
                end,
                draw(st.integers(1, 4)) if disabled else None,
                draw(st.booleans()) if disabled else False,
            )
        )
    assessments = [
        Assessment(
            draw(st.integers(0, 4)),
            d,
            d + timedelta(days=draw(st.integers(30, 800))),
            draw(st.booleans()),
        )
        for d in draw(st.lists(days, max_size=3))
    ]
    beds = []
    if draw(st.booleans()):
        start = draw(days)
        cut = start + timedelta(days=draw(st.integers(1, 60)))
        # sometimes the bed moves to another org mid-way (two spans, two payees)
        if draw(st.booleans()):
            beds = [
                Bed(bed_id, ORG_A, (Span(start, cut - timedelta(days=1)),)),
                Bed(uuid.UUID(int=8), ORG_B, (Span(cut),)),
            ]
        else:
            beds = [Bed(bed_id, ORG_A, (Span(start, draw(st.one_of(st.none(), st.just(cut)))),))]
    mods = [
        Modification(
            bed_id,
            draw(st.sampled_from(["aging_adaptation", "smart"])),
            draw(st.integers(0, 600_000)),
            draw(days),
        )
        for _ in range(draw(st.integers(0, 4)))
    ]
    birth = draw(st.dates(min_value=date(1920, 1, 1), max_value=date(1968, 1, 1)))
    places = st.sampled_from(["350212", "440304", "350203"])
    hukou = draw(places)
    # sometimes the elder moves (hukou, residence or both), once or twice, on any day
    moves: list[Move] = []
    if draw(st.booleans()):
        moves = [Move(birth, hukou, "350212")]
        for day in sorted(set(draw(st.lists(days, min_size=1, max_size=2)))):
            moves.append(Move(day, draw(places), draw(places)))
        hukou = moves[-1].hukou_region
    return ElderFacts(
        elder_id=elder_id,
        birth_date=birth,
        hukou_region=hukou,
        residence_region=moves[-1].residence_region if moves else "350212",
        moves=tuple(moves),
        living_arrangement=draw(
            st.sampled_from(["alone", "couple", "with_family", "with_disabled_dependant"])
        ),
        lives_at_home=draw(st.booleans()),
        deceased_on=draw(st.one_of(st.none(), days)),
        categories=tuple(cats),
        assessments=tuple(assessments),
        beds=tuple(beds),
        modifications=tuple(mods),
        benefits=tuple(
            Benefit("home_adaptation_subsidy", draw(st.integers(0, 400_000)), draw(days))
            for _ in range(draw(st.integers(0, 2)))
        ),
        applications=tuple(
            Application("sz-home-care-voucher", d) for d in draw(st.lists(days, max_size=1))
        ),
        grants=tuple(
            Grant(
                "xm-tongan-family-bed",
                draw(st.sampled_from(["construction_adaptation", "construction_smart"])),
                m,
                draw(st.integers(0, 300_000)),
            )
            for m in draw(
                st.lists(st.sampled_from([date(2023, 7, 1), date(2024, 1, 1)]), max_size=2)
            )
        ),
        disqualified_on=draw(st.one_of(st.none(), days)),
    )


def run(facts: ElderFacts, doc: str, month: date, explain: bool = False) -> engine.Evaluation:
    return engine.evaluate(DOCS[doc], facts, month, explain=explain)


@settings(max_examples=300, deadline=None)
@given(elders(), st.sampled_from(list(DOCS)), st.sampled_from(MONTHS))
def test_never_two_lines_from_one_group_and_never_negative(facts, doc, month):
    ev = run(facts, doc, month)
    for combo in DOCS[doc].combinations:
        if combo.kind == "highest":
            assert len([line for line in ev.lines if line.rule in combo.rules]) <= 1
    assert all(line.amount_fen > 0 for line in ev.lines)
    assert all(p.amount_fen >= 0 for line in ev.lines for p in line.parts)
    assert ev.total_fen >= 0
    assert {line.rule for line in ev.lines}.isdisjoint({r.rule for r in ev.refused})


@settings(max_examples=300, deadline=None)
@given(elders(), st.sampled_from(MONTHS))
def test_caps_never_exceeded(facts, month):
    ev = run(facts, "xm-tongan-family-bed", month)
    got = {line.rule: line.amount_fen for line in ev.lines}
    before = {r: sum(g.amount_fen for g in facts.grants if g.rule == r) for r in got}
    prior = sum(b.amount_fen for b in facts.benefits if b.received_on < month + timedelta(days=31))
    adaptation = got.get("construction_adaptation", 0)
    smart = got.get("construction_smart", 0)
    assert (
        adaptation + before.get("construction_adaptation", 0) <= max(0, 300_000 - prior)
        or not adaptation
    )
    assert smart + before.get("construction_smart", 0) <= 200_000
    assert adaptation + smart <= 500_000
    monthly = {"operating": 25_000, "nursing_total": 120_000, "nursing_semi": 100_000}
    for rule, full in monthly.items():
        assert got.get(rule, 0) <= full


@settings(max_examples=200, deadline=None)
@given(elders(), st.sampled_from(list(DOCS)), st.sampled_from(MONTHS), st.randoms())
def test_deterministic_and_independent_of_row_order(facts, doc, month, rnd: random.Random):
    def shuffled(rows):
        rows = list(rows)
        rnd.shuffle(rows)
        return tuple(rows)

    other = ElderFacts(
        **{
            **facts.__dict__,
            "categories": shuffled(facts.categories),
            "assessments": shuffled(facts.assessments),
            "modifications": shuffled(facts.modifications),
            "benefits": shuffled(facts.benefits),
            "grants": shuffled(facts.grants),
        }
    )
    a, b = run(facts, doc, month, explain=True), run(other, doc, month, explain=True)
    assert a == b
    assert run(facts, doc, month, explain=True) == a


@given(
    st.integers(0, 10**7),
    st.integers(28, 31).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(st.integers(1, n), min_size=1, max_size=6))
    ),
)
def test_prorating_sums_to_the_whole(amount, n_and_cuts):
    n, cuts = n_and_cuts
    # split the month's n days into consecutive pieces at the cut points
    points = sorted({0, n, *cuts})
    pieces = [b - a for a, b in itertools.pairwise(points)]
    parts = engine.prorate(amount, pieces, n)
    assert sum(parts) == amount  # a whole month, however it is cut, is the whole amount
    for fen, d in zip(parts, pieces, strict=True):
        assert abs(fen - amount * d / n) < 1  # each part within a fen of exact


@given(
    st.integers(0, 10**7),
    st.integers(28, 31).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
)
def test_a_part_month_rounds_half_up(amount, n_and_days):
    n, d = n_and_days
    (fen,) = engine.prorate(amount, [d], n)
    exact2 = 2 * amount * d  # compare 2·exact with 2·fen ± n, all integers
    assert 2 * fen * n - n <= exact2 < 2 * fen * n + n


def test_bed_moving_org_mid_month_splits_the_line_and_keeps_the_whole():
    facts = ElderFacts(
        uuid.uuid4(),
        date(1950, 1, 1),
        "350212",
        "350212",
        beds=(
            Bed(uuid.UUID(int=1), ORG_A, (Span(date(2024, 1, 1), date(2024, 5, 12)),)),
            Bed(uuid.UUID(int=2), ORG_B, (Span(date(2024, 5, 13)),)),
        ),
    )
    ev = run(facts, "xm-tongan-family-bed", date(2024, 5, 1))
    (line,) = ev.lines
    assert line.amount_fen == 25_000
    assert {p.org_id: p.amount_fen for p in line.parts} == {ORG_A: 9677, ORG_B: 15323}


@settings(max_examples=300, deadline=None)
@given(elders(), st.sampled_from(list(DOCS)), st.sampled_from(MONTHS))
def test_the_run_memo_never_changes_a_result(facts, doc, month):
    """A memo warmed by other elders gives exactly what a fresh evaluation gives."""
    memo: dict = {}
    twin = ElderFacts(**{**facts.__dict__, "elder_id": uuid.UUID(int=facts.elder_id.int ^ 1)})
    engine.evaluate(DOCS[doc], twin, month, explain=False, memo=memo)
    cached = engine.evaluate(DOCS[doc], facts, month, explain=False, memo=memo)
    fresh = engine.evaluate(DOCS[doc], facts, month, explain=False)
    assert cached == fresh
