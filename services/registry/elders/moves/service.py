"""Dated moves of an elder's hukou and residence (``registry.residence_history``).

The elder's ``hukou_region``/``residence_region`` columns stay what every read and scoping
rule looks at: they are always the history row in force today. A move recorded for a later
day (up to ``backdating.MAX_AHEAD``) changes them on that day (``apply_due``, hourly).

Who may record a move: the same people who may write the elder's other records (case
writers who can see the elder). A civil-affairs office records a move anywhere — the office
an elder leaves is the one that must stop paying on the day they left (迁出), and it is the
one that sees them; the destination's office sees them only afterwards. An org records only
where an elder lives, only inside its service area (the rule of registering an elder there);
a hukou change is the offices' (a local hukou brings the org its subsidies). A move never widens
anyone's access: afterwards the elder is visible exactly as ``shared.scoping`` says (an office
no longer covering either code loses them; an org keeps them while its bed serves them).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import backdating
from services.registry.elders.models import Elder
from services.registry.elders.moves.models import ResidenceRecord
from services.registry.elders.moves.schemas import MoveCreate, MoveRead
from services.registry.orgs import service as orgs
from shared import audit
from shared.auth import ORG_ROLES, Principal
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from shared.i18n import T
from shared.pagination import Page, paginate

ONE_DAY = timedelta(days=1)
MOVE_EXISTS_SLUG = "move-exists"


def registered(elder: Elder, *, recorded_by: str) -> ResidenceRecord:
    """The first row: what the elder is registered with, in force from their birth date
    (the registry knows no earlier place)."""
    return ResidenceRecord(
        elder_id=elder.id,
        hukou_region=elder.hukou_region,
        residence_region=elder.residence_region,
        valid_from=elder.birth_date,
        kind="registered",
        recorded_by=recorded_by,
    )


async def history(session: AsyncSession, elder: Elder) -> list[ResidenceRecord]:
    """Every row of the elder, oldest first. An elder written before history existed (or
    straight into the table) gets its ``registered`` row from its current columns now."""
    rows = list(
        await session.scalars(
            select(ResidenceRecord)
            .where(ResidenceRecord.elder_id == elder.id)
            .order_by(ResidenceRecord.valid_from)
        )
    )
    if not rows:
        first = registered(elder, recorded_by="registry")
        session.add(first)
        await session.flush()
        rows = [first]
    return rows


def in_force(rows: Sequence[ResidenceRecord], day: date) -> ResidenceRecord:
    """The row holding on ``day`` (rows oldest first; before the first row, the first)."""
    held = rows[0]
    for r in rows:
        if r.valid_from <= day:
            held = r
    return held


async def _check_destination(
    session: AsyncSession, principal: Principal, changes: list[tuple[str, str]]
) -> None:
    """An org moves an elder only inside its service area (see the module doc); offices,
    who already had to see the elder, anywhere."""
    if principal.role not in ORG_ROLES:
        return
    if any(field == "hukou_region" for field, _ in changes):
        # a hukou makes an elder local, and local elders bring the org its subsidies
        raise Forbidden(
            T(
                "户籍变更由民政部门登记，服务机构只能登记居住地迁移",
                "a hukou change is recorded by a civil-affairs office; an org records "
                "where the elder lives",
            )
        )
    assert principal.org is not None
    area = await orgs.service_area(session=session, org_id=principal.org)
    for _, code in changes:
        if not any(code.startswith(prefix) for prefix in area):
            served = "、".join(area) or "—"
            raise Forbidden(
                T(
                    f"{code} 不在本机构服务区域（{served}）内：迁往区域外的记录由民政部门办理",
                    f"{code} is outside your service area ({', '.join(area) or 'none'}): "
                    "a move out of it is recorded by a civil-affairs office",
                )
            )


def _carry_forward(
    rows: Sequence[ResidenceRecord],
    day: date,
    before: ResidenceRecord,
    changes: list[tuple[str, str]],
) -> None:
    """A move slotted in before later ones: each later row holds the whole place, copying
    what did not change then, so the copies of what this move changes follow it — up to the
    first later row that itself set another value (an earlier hukou change must not snap back
    on the day of a later residence-only move)."""
    later = sorted((r for r in rows if r.valid_from > day), key=lambda r: r.valid_from)
    for field, new in changes:
        old = getattr(before, field)
        for r in later:
            if getattr(r, field) != old:
                break
            setattr(r, field, new)


async def record(
    *,
    session: AsyncSession,
    principal: Principal,
    elder: Elder,
    move_in: MoveCreate,
    today: date,
    same_day: str = "conflict",
) -> ResidenceRecord:
    """Record a move; ``same_day="replace"`` (a PATCH of the residence) corrects a move
    already recorded for that day instead of refusing it."""
    day = move_in.moved_on
    if day <= elder.birth_date:
        raise Unprocessable(
            T("迁居日期须晚于出生日期", "moved_on must be after the birth date"),
            errors=[("moved_on", T(f"须晚于 {elder.birth_date}", f"after {elder.birth_date}"))],
        )
    backdated = backdating.check(
        day, today, principal=principal, reason=move_in.reason, field="moved_on",
        reason_field="reason",
    )  # fmt: skip
    # one move at a time per elder: each reads the history the last one left
    await session.execute(select(Elder.id).where(Elder.id == elder.id).with_for_update())
    rows = await history(session, elder)
    same = next((r for r in rows if r.valid_from == day), None)
    if same is not None and same_day != "replace":
        raise Conflict(
            T(f"{day} 已记录过一次迁居", f"a move on {day} is already recorded"),
            slug=MOVE_EXISTS_SLUG,
            title=T("当日已有迁居记录", "Move already recorded"),
            errors=[("moved_on", T("当日已有迁居记录", "a move on that day is recorded"))],
            existing_id=str(same.id),
        )
    before = in_force(rows, day - ONE_DAY)
    hukou = move_in.hukou_region or before.hukou_region
    changes = [
        (field, new)
        for field, new, old in (
            ("residence_region", move_in.residence_region, before.residence_region),
            ("hukou_region", hukou, before.hukou_region),
        )
        if new != old
    ]
    if not changes and same is None:
        raise Unprocessable(
            T(
                f"{day} 前老人已在 {before.residence_region} 居住（户籍 {before.hukou_region}），"
                "没有变化",
                f"on {day} the elder already lives in {before.residence_region} (hukou "
                f"{before.hukou_region}): nothing moves",
            ),
            errors=[("residence_region", T("与迁居前相同", "the same as before the move"))],
        )
    await _check_destination(session, principal, changes)
    if same is not None:
        row = same
        row.hukou_region, row.residence_region = hukou, move_in.residence_region
        row.reason, row.recorded_by = move_in.reason, principal.sub
    else:
        row = ResidenceRecord(
            elder_id=elder.id,
            hukou_region=hukou,
            residence_region=move_in.residence_region,
            valid_from=day,
            kind="move",
            reason=move_in.reason,
            recorded_by=principal.sub,
        )
        session.add(row)
    _carry_forward(rows, day, before, changes)
    await session.flush()
    await audit.record(
        session,
        service="registry",
        principal=principal,
        action="move",
        resource_type="elder",
        resource_id=elder.id,
        fields=[
            f"moved_on:{day.isoformat()}",
            *(f"{f}:{getattr(before, f)}->{new}" for f, new in changes),
        ],
    )
    if backdated:
        await backdating.audit_backdating(
            session,
            principal=principal,
            resource_type="elder",
            resource_id=elder.id,
            field="moved_on",
            day=day,
        )
    rows = await history(session, elder)
    now = in_force(rows, today)
    elder.hukou_region, elder.residence_region = now.hukou_region, now.residence_region
    await session.flush()
    return row


_APPLY_DUE = text(
    """
    UPDATE registry.elders e
       SET hukou_region = h.hukou_region, residence_region = h.residence_region
      FROM (SELECT DISTINCT ON (r.elder_id) r.elder_id, r.hukou_region, r.residence_region
              FROM registry.residence_history r
             WHERE r.valid_from <= :today
               AND r.elder_id IN (SELECT m.elder_id FROM registry.residence_history m
                                   WHERE m.kind = 'move' AND m.valid_from <= :today
                                     AND m.valid_from > :since)
             ORDER BY r.elder_id, r.valid_from DESC) h
     WHERE e.id = h.elder_id
       AND (e.hukou_region, e.residence_region)
           IS DISTINCT FROM (h.hukou_region, h.residence_region)
    """
)


async def apply_due(session: AsyncSession, *, today: date, since: date | None = None) -> int:
    """Moves recorded ahead of their day take effect on it: the current columns of elders
    with a move on ``since`` … ``today`` become the row in force today. Returns how many."""
    since = since or today - timedelta(days=backdating.MAX_AHEAD.days + 1)
    result = await session.execute(_APPLY_DUE, {"today": today, "since": since})
    return result.rowcount or 0  # type: ignore[attr-defined]


async def withdraw(
    *,
    session: AsyncSession,
    principal: Principal,
    elder: Elder,
    move_id: uuid.UUID,
    reason: str,
    today: date,
) -> ResidenceRecord:
    """Withdraw a move recorded by mistake: its row goes, what later rows copied from it goes
    back to what held before it, the current columns follow, and the audit log keeps what was
    withdrawn and why. Civil-affairs offices only (an org corrects by recording a move). The
    next subsidy run sees the changed facts and reverses what they no longer grant."""
    if principal.role in ORG_ROLES:
        raise Forbidden(
            T("撤销迁居记录由民政部门办理", "a move is withdrawn by a civil-affairs office")
        )
    await session.execute(select(Elder.id).where(Elder.id == elder.id).with_for_update())
    rows = await history(session, elder)
    row = next((r for r in rows if r.id == move_id), None)
    if row is None or row.kind != "move":
        raise NotFound(
            T(f"未找到老人的迁居记录 {move_id}", f"move {move_id} of this elder not found")
        )
    before = in_force([r for r in rows if r is not row], row.valid_from - ONE_DAY)
    changes = [
        (field, getattr(before, field))
        for field in ("residence_region", "hukou_region")
        if getattr(row, field) != getattr(before, field)
    ]
    _carry_forward(rows, row.valid_from, row, changes)
    await session.delete(row)
    await session.flush()
    await audit.record(
        session,
        service="registry",
        principal=principal,
        action="move.withdraw",
        resource_type="elder",
        resource_id=elder.id,
        fields=[
            f"moved_on:{row.valid_from.isoformat()}",
            *(f"{f}:{getattr(row, f)}->{old}" for f, old in changes),
            f"reason:{reason}",
        ],
    )
    now = in_force(await history(session, elder), today)
    elder.hukou_region, elder.residence_region = now.hukou_region, now.residence_region
    await session.flush()
    return row


async def list_for(
    *, session: AsyncSession, elder: Elder, cursor: str | None, limit: int
) -> Page[ResidenceRecord]:
    """Oldest first (the order a history is read in)."""
    stmt = select(ResidenceRecord).where(ResidenceRecord.elder_id == elder.id)
    key = (ResidenceRecord.valid_from, ResidenceRecord.id)
    return await paginate(session, stmt, key=key, cursor=cursor, limit=limit)


async def current_id(session: AsyncSession, elder: Elder, today: date):
    return await session.scalar(
        select(ResidenceRecord.id)
        .where(ResidenceRecord.elder_id == elder.id, ResidenceRecord.valid_from <= today)
        .order_by(ResidenceRecord.valid_from.desc())
        .limit(1)
    )


def to_read(row: ResidenceRecord, *, current: bool) -> MoveRead:
    read = MoveRead.model_validate(row)
    read.current = current
    return read
