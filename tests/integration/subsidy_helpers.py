"""Facts for subsidy tests, written where the real services keep them.

Registry facts with historical dates (a case table's bed from 2024-04) are written straight
into the registry's tables — test set-up only; the service reads them through the read model
as always. Verified visits go through ONE helper, ``add_verified_visit``, which writes a
checked-out visit into dispatch's own table (test set-up only), so that subsidy reads it
through ``dispatch.verified_visits`` exactly as in production.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from services.subsidy.policies.cases import Orgs, facts_from_case, parse_month
from services.subsidy.policies.facts import ElderFacts
from shared import clock
from shared.db import new_id
from shared.ids import credit_code_check_char
from shared.pii import PiiCipher, mask_id_number
from tests.conftest import TEST_PII_HASH_KEY, TEST_PII_KEY
from tests.factories import id_number


async def add_verified_visit(
    conn: asyncpg.Connection,
    *,
    elder_id: uuid.UUID,
    org_id: uuid.UUID,
    service_day: date,
    bed_id: uuid.UUID | None = None,
    staff_id: uuid.UUID | None = None,
    minutes: int = 60,
    item_codes: tuple[str, ...] = ("meal_assist",),
    visit_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """One verified visit (checked out, no open anomaly flag) as dispatch publishes it."""
    visit_id = visit_id or new_id()
    start = datetime.combine(service_day, time(9, 0), tzinfo=UTC) - timedelta(hours=8)
    end = start + timedelta(minutes=minutes)
    if bed_id is None:
        bed_id = (
            await conn.fetchval(
                "SELECT id FROM registry.beds WHERE elder_id = $1 ORDER BY created_at DESC LIMIT 1",
                elder_id,
            )
            or new_id()
        )  # a visit names a bed; an elder without one still gets a unique id
    await conn.execute(
        "INSERT INTO dispatch.visits (id, bed_id, elder_id, org_id, staff_id, kind, status,"
        " planned_start, planned_end, items, check_in_at, check_in_received_at,"
        " check_out_at, check_out_received_at, items_done, late, service_day, minutes)"
        " VALUES ($1, $2, $3, $4, $5, 'planned', 'checked_out', $6, $7, $8, $6, $6,"
        " $7, now(), $8, false, $9, $10)",
        visit_id,
        bed_id,
        elder_id,
        org_id,
        staff_id or new_id(),
        start,
        end,
        list(item_codes),
        service_day,
        minutes,
    )
    return visit_id


async def ensure_org(
    conn: asyncpg.Connection, org_id: uuid.UUID, region: str = "350212"
) -> uuid.UUID:
    """An org and one station (registry rows), idempotently; returns the station id."""
    station_id = uuid.uuid5(org_id, "station")
    n = int(hashlib.sha256(org_id.bytes).hexdigest(), 16) % 10**7
    body = f"91{region}MA{n:07d}"
    code = body + credit_code_check_char(body)
    await conn.execute(
        "INSERT INTO registry.orgs (id, name, credit_code, region, licences)"
        " VALUES ($1, $2, $3, $4, '[]') ON CONFLICT DO NOTHING",
        org_id,
        f"测试机构 {str(org_id)[:8]}",
        code,
        region,
    )
    await conn.execute(
        "INSERT INTO registry.stations (id, org_id, name, region, lat, lon, zone)"
        " VALUES ($1, $2, '测试站', $3, 24.73, 118.15, 'urban') ON CONFLICT DO NOTHING",
        station_id,
        org_id,
        region,
    )
    return station_id


async def insert_elder_facts(
    conn: asyncpg.Connection, facts: ElderFacts, *, name: str = "测试老人"
) -> None:
    """Write ``facts`` (from a case table or built by hand) into registry tables, plus the
    subsidy-owned ones (earlier subsidies, approved applications, earlier grants)."""
    e = facts
    # A real, encrypted ID number: the registry must be able to read back what is written here.
    number = id_number(
        region=e.hukou_region[:6], born=e.birth_date, seq=e.elder_id.int % 1000, female=True
    )
    cipher = PiiCipher(TEST_PII_KEY, TEST_PII_HASH_KEY)
    await conn.execute(
        "INSERT INTO registry.elders (id, id_number_enc, id_number_hash, id_number_masked, name,"
        " birth_date, gender, hukou_region, residence_region, address, zone, living_arrangement,"
        " lives_at_home, deceased_on) VALUES ($1, $2, $3, $11, $4, $5, 'female',"
        " $6, $7, '测试地址', 'urban', $8, $9, $10)",
        e.elder_id,
        cipher.encrypt(number, context=b"elder.id_number"),
        # keyed on the elder id too: two case-table elders born the same day stay distinct
        cipher.lookup_hash(f"{number}:{e.elder_id}"),
        name[:64],
        e.birth_date,
        e.hukou_region,
        e.residence_region,
        e.living_arrangement,
        e.lives_at_home,
        e.deceased_on,
        mask_id_number(number),
    )
    for i, mv in enumerate(e.moves):  # the residence history, as the registry keeps it
        await conn.execute(
            "INSERT INTO registry.residence_history (id, elder_id, hukou_region,"
            " residence_region, valid_from, kind, recorded_by) VALUES ($1, $2, $3, $4, $5, $6,"
            " 'test')",
            new_id(),
            e.elder_id,
            mv.hukou_region,
            mv.residence_region,
            mv.valid_from,
            "registered" if i == 0 else "move",
        )
    for a in e.assessments:
        await conn.execute(
            "INSERT INTO registry.assessments (id, elder_id, source, base_level, level, "
            "adjustments,"
            " dementia, coma, care_risk_events_30d, assessed_on, valid_until, assessor)"
            " VALUES ($1, $2, 'third_party', $3, $3, '[]', $4, false, 0, $5, $6, '第三方评估机构')",
            new_id(),
            e.elder_id,
            a.level,
            a.dementia,
            a.assessed_on,
            a.valid_until or a.assessed_on + timedelta(days=730),
        )
    for c in e.categories:
        await conn.execute(
            "INSERT INTO registry.categories (id, elder_id, code, valid_from, valid_to, grade,"
            " receives_nursing_subsidy) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            new_id(),
            e.elder_id,
            c.code,
            c.valid_from,
            c.valid_to,
            c.grade,
            c.receives_nursing_subsidy,
        )
    for b in e.beds:
        station = await ensure_org(conn, b.org_id)
        first = b.active[0].start
        last = b.active[-1].end
        status = "terminated" if last is not None else "active"
        await conn.execute(
            "INSERT INTO registry.beds (id, elder_id, org_id, station_id, status, policy_code,"
            " applied_on, started_on, terminated_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
            b.bed_id,
            e.elder_id,
            b.org_id,
            station,
            status,
            b.policy_code or "xm-tongan-family-bed",
            first,
            last + timedelta(days=1) if last else None,
        )
        events: list[tuple[str | None, str, date]] = []
        prev = None
        for i, span in enumerate(b.active):
            events.append((prev, "active", span.start))
            prev = "active"
            if span.end is not None:
                to = "terminated" if i == len(b.active) - 1 else "suspended"
                events.append(("active", to, span.end + timedelta(days=1)))
                prev = to
        for n, (frm, to, day) in enumerate(events):
            await conn.execute(
                "INSERT INTO registry.bed_events (id, bed_id, from_status, to_status, effective_on,"
                " actor, created_at) VALUES ($1, $2, $3, $4, $5, 'test', now() + $6 * interval "
                "'1 ms')",
                new_id(),
                b.bed_id,
                frm,
                to,
                day,
                n,
            )
    for m in e.modifications:
        await conn.execute(
            "INSERT INTO registry.modifications (id, bed_id, kind, item, cost_fen, done_on,"
            " warranty_until) VALUES ($1, $2, $3, '改造项目', $4, $5, $6)",
            new_id(),
            m.bed_id,
            m.kind,
            m.cost_fen,
            m.done_on,
            m.done_on + timedelta(days=365),
        )
    for bf in e.benefits:
        await conn.execute(
            "INSERT INTO subsidy.benefits (id, elder_id, code, amount_fen, received_on, "
            "recorded_by)"
            " VALUES ($1, $2, $3, $4, $5, 'test')",
            new_id(),
            e.elder_id,
            bf.code,
            bf.amount_fen,
            bf.received_on,
        )
    for ap in e.applications:
        await conn.execute(
            "INSERT INTO subsidy.applications (id, elder_id, policy_code, documents, status, stage,"
            " submitted_on, due_on, decided_on, reasons, history, created_by)"
            " VALUES ($1, $2, $3, '[]', 'approved', 'done', $4, $4, $4, '[]', '[]', 'test')",
            new_id(),
            e.elder_id,
            ap.policy_code,
            ap.approved_on,
        )
    for g in e.grants:
        decision = new_id()
        await conn.execute(
            "INSERT INTO subsidy.decisions (id, elder_id, month, policy_code, policy_version,"
            " policy_hash, facts, facts_hash, verdicts, total_fen)"
            " VALUES ($1, $2, $3, $4, 0, 'earlier', '{}', 'earlier', '[]', $5)",
            decision,
            e.elder_id,
            g.month,
            g.policy_code,
            g.amount_fen,
        )
        await conn.execute(
            "INSERT INTO subsidy.decision_lines (id, decision_id, elder_id, month, policy_code, "
            "rule,"
            " kind, pay_to, fund, amount_fen, days) VALUES ($1, $2, $3, $4, $5, $6, $7, 'org', "
            "'x', $8, 0)",
            new_id(),
            decision,
            e.elder_id,
            g.month,
            g.policy_code,
            g.rule,
            "annual" if g.rule.startswith("circle") else "one_time",
            g.amount_fen,
        )
    if e.disqualified_on:
        await conn.execute(
            "INSERT INTO subsidy.fraud_flags (id, subject, elder_id, reason, found_on, "
            "effective_from,"
            " repay_fen, created_by) VALUES ($1, 'elder', $2, '骗取补贴', $3, $3, 0, 'test')",
            new_id(),
            e.elder_id,
            e.disqualified_on,
        )
    for v in e.visits:
        await ensure_org(conn, v.org_id)
        await add_verified_visit(
            conn,
            elder_id=e.elder_id,
            org_id=v.org_id,
            service_day=v.service_day,
            visit_id=v.visit_id,
        )


def case_facts(
    case: Mapping[str, Any],
    policy_code: str,
    orgs: Orgs,
    *,
    region_map: Mapping[str, str] | None = None,
) -> ElderFacts:
    """A case table's facts with fresh ids (a table may run more than once per database)."""
    f = facts_from_case(case, policy_code, orgs)
    fresh = new_id()
    remap = dict(region_map or {})
    beds = tuple(
        type(b)(uuid.uuid5(fresh, str(b.bed_id)), b.org_id, b.active, b.policy_code) for b in f.beds
    )
    bed_ids = {old.bed_id: new.bed_id for old, new in zip(f.beds, beds, strict=True)}
    return ElderFacts(
        **{
            **f.__dict__,
            "elder_id": fresh,
            "hukou_region": remap.get(f.hukou_region, f.hukou_region),
            "residence_region": remap.get(f.residence_region, f.residence_region),
            "beds": beds,
            "modifications": tuple(
                type(m)(bed_ids.get(m.bed_id, m.bed_id), m.kind, m.cost_fen, m.done_on)
                for m in f.modifications
            ),
            "visits": tuple(
                type(v)(new_id(), v.org_id, v.service_day, v.item_codes) for v in f.visits
            ),
            "moves": tuple(
                type(m)(
                    m.valid_from,
                    remap.get(m.hukou_region, m.hukou_region),
                    remap.get(m.residence_region, m.residence_region),
                )
                for m in f.moves
            ),
        }
    )


def month_of(case: Mapping[str, Any]) -> str:
    m = parse_month(case["month"])
    return f"{m.year:04d}-{m.month:02d}"


def recent_month() -> date:
    """Last month (registry API calls bound start dates to the last 31 days)."""
    return (clock.today().replace(day=1) - timedelta(days=1)).replace(day=1)
