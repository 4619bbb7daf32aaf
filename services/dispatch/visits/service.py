"""Visits: creation (items from the catalogue, qualifications), check-in and check-out with
EVV and anomaly flags, supervisor review; scoped reads."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by, insert
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.dispatch import directory
from services.dispatch import policy as dispatch_policy
from services.dispatch.catalogue import service as catalogue
from services.dispatch.chains.models import OrgSettings
from services.dispatch.dispatches import service as dispatches
from services.dispatch.outbox import service as outbox
from services.dispatch.visits import anomalies
from services.dispatch.visits.models import Visit, VisitFlag
from services.dispatch.visits.schemas import (
    CheckIn,
    CheckOut,
    CheckResult,
    Evv,
    FlagRead,
    FlagReview,
    VisitCreate,
    VisitRead,
)
from shared import audit, clock, scoping
from shared import readmodel as rm
from shared.auth import Principal, Role
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from shared.geo import distance_m
from shared.i18n import T

REVIEWERS = frozenset({Role.admin, Role.street, Role.community, Role.org_admin})


def scope_clause(principal: Principal) -> ColumnElement[bool]:
    """A caregiver sees its own visits; an org its beds' visits; region roles and family the
    visits of elders they see (``shared.scoping``)."""
    role = principal.role
    if role is Role.caregiver:
        return Visit.staff_id == bindparam("scope_staff", principal.staff)
    if role is Role.org_admin:
        return Visit.org_id == bindparam("scope_org", principal.org)
    if role in (Role.admin, Role.street, Role.community, Role.service):
        return scoping.by_elder(principal, Visit.elder_id)
    return false()  # family members see nothing operational


def scope_values(principal: Principal) -> dict[str, Any]:
    """The values of every principal-dependent parameter of ``scope_clause``: a statement
    built once per shape of principal runs for any principal of that shape with these."""
    return {**scoping.scope_params(principal), "scope_staff": principal.staff}


def _per_shape(build: Callable[[Principal], Any]) -> Callable[[Principal], Any]:
    """``build(principal)`` once per shape of principal (``shared.scoping.scope_shape``):
    building a statement of this size costs ~4 ms of CPU, running a built one ~0.3 ms."""
    built: dict[Any, Any] = {}

    def get(principal: Principal) -> Any:
        shape = scoping.scope_shape(principal)
        if shape not in built:
            built[shape] = build(principal)
        return built[shape]

    return get


def readable_statement(principal: Principal) -> Select[tuple[Visit]]:
    return select(Visit).where(scope_clause(principal))


async def get(
    *, session: AsyncSession, principal: Principal, visit_id: uuid.UUID, for_update: bool = False
) -> Visit:
    stmt = readable_statement(principal).where(Visit.id == visit_id)
    if for_update:
        stmt = stmt.with_for_update()
    visit = await session.scalar(stmt)
    if visit is None:
        raise NotFound(T(f"未找到上门服务 {visit_id}", f"visit {visit_id} not found"))
    return visit


async def create(
    *, session: AsyncSession, principal: Principal, visit_in: VisitCreate
) -> tuple[Visit, bool]:
    """An ad-hoc visit; ``client_ref`` makes a handset's retry (even days later) find the
    first one. Returns (visit, created)."""
    bed = await directory.bed(
        session=session, principal=principal, bed_id=visit_in.bed_id, field="bed_id"
    )
    if bed.status != "active":
        raise Unprocessable(
            T(f"床位状态为 {bed.status}，不能安排上门服务", f"a {bed.status} bed takes no visits"),
            errors=[("bed_id", T("床位未在服务中", "the bed is not active"))],
        )
    staff_id = visit_in.staff_id
    if principal.role is Role.caregiver:
        if staff_id not in (None, principal.staff):
            raise Forbidden(
                T("服务人员只能为自己登记上门服务", "caregivers record only their own visits")
            )
        staff_id = principal.staff
    if visit_in.client_ref:
        earlier = await session.scalar(
            select(Visit).where(Visit.org_id == bed.org_id, Visit.client_ref == visit_in.client_ref)
        )
        if earlier is not None:
            return earlier, False
    cat = await catalogue.load(session=session)
    codes = cat.resolve(visit_in.items, field="items")
    staff = None
    if staff_id is not None:
        staff = await directory.staff_member(session=session, staff_id=staff_id, org_id=bed.org_id)
    catalogue.check_qualified(
        cat,
        codes,
        staff_role=staff.role if staff is not None else None,
        medical_license_valid=catalogue.licence_valid(
            bed.medical_license, bed.medical_license_valid_until, clock.today()
        ),
    )
    visit = Visit(
        bed_id=bed.bed_id,
        elder_id=bed.elder_id,
        org_id=bed.org_id,
        station_id=bed.station_id,
        staff_id=staff_id,
        kind="adhoc",
        status="planned",
        planned_start=visit_in.planned_start,
        planned_end=visit_in.planned_end,
        items=codes,
        client_ref=visit_in.client_ref,
    )
    session.add(visit)
    await session.flush()
    return visit, True


def _check_time(at: datetime, now: datetime, field: str) -> None:
    evv = dispatch_policy.load().evv
    if at > now + timedelta(seconds=evv.future_skew_s):
        raise Unprocessable(
            T("手机时间晚于服务器时间", "the handset time is in the future"),
            errors=[(field, T("不能晚于当前时间", "must not be in the future"))],
        )
    if at < now - timedelta(days=evv.max_backdate_days):
        raise Unprocessable(
            T(
                f"超过 {evv.max_backdate_days} 天的补传不再接受",
                f"uploads older than {evv.max_backdate_days} days are refused",
            ),
            errors=[(field, T("时间过早", "too long ago"))],
        )


def _actor_may_act(principal: Principal, visit: Any) -> None:
    if principal.role is Role.caregiver and visit.staff_id != principal.staff:
        raise Forbidden(
            T("只有被指派的服务人员可以签到签退", "only the assigned caregiver may check in or out")
        )
    if principal.role not in (Role.caregiver, Role.org_admin, Role.admin):
        raise Forbidden(T("该角色不能签到签退", "this role may not check in or out"))


async def flag_codes(session: AsyncSession, visit_id: uuid.UUID) -> list[str]:
    return list(await session.scalar(select(_codes_of(visit_id))) or [])


def _result(
    visit_id: uuid.UUID,
    status: str,
    distance: float | None,
    codes: list[str] | None,
    late: bool,
) -> CheckResult:
    return CheckResult(
        visit_id=visit_id,
        status=status,  # type: ignore[arg-type]
        distance_m=None if distance is None else round(distance, 1),
        flags=list(codes or []),
        late=late,
    )


def _flag_rows(flags: list[tuple[uuid.UUID, anomalies.Flag]]) -> dict[str, list[Any]]:
    """Parameters of ``_FLAGS``: flags as three parallel arrays."""
    return {
        "flag_visits": [v for v, _ in flags],
        "flag_codes": [f.code for _, f in flags],
        "flag_details": [orjson.dumps(f.detail).decode() for _, f in flags],
    }


def _flags_statement() -> Any:
    f = (
        func.unnest(
            bindparam("flag_visits", type_=ARRAY(PgUUID(as_uuid=True))),
            bindparam("flag_codes", type_=ARRAY(String)),
            bindparam("flag_details", type_=ARRAY(Text)),
        )
        .table_valued("visit_id", "code", "detail")
        .render_derived(name="f")
    )
    return (
        insert(VisitFlag.__table__)
        .from_select(
            ["visit_id", "code", "detail", "status"],
            select(f.c.visit_id, f.c.code, cast(f.c.detail, JSONB), literal("open")),
        )
        .on_conflict_do_nothing(index_elements=["visit_id", "code"])
    )


def _write_statement(columns: tuple[str, ...]) -> Any:
    """The visit's new EVV values (``set_<column>`` parameters), its flags (``_flag_rows``)
    and its outbox row (``outbox.visit_mode_values``) in one round trip: data-modifying CTEs
    under the outbox's NOTIFY. Built once; a handset's check-in is the hot path."""
    v = Visit.__table__
    evv = (
        update(v)
        .where(v.c.id == bindparam("visit_id"))
        .values({c: bindparam(f"set_{c}", type_=v.c[c].type) for c in columns})
    )
    return select(func.pg_notify(outbox.CHANNEL, "")).add_cte(
        evv.cte("evv"), _flags_statement().cte("flags"), outbox.VISIT_MODE.cte("box")
    )


_IN_COLUMNS = (
    "status",
    "check_in_at",
    "check_in_received_at",
    "check_in_lat",
    "check_in_lon",
    "check_in_distance_m",
    "alternate_reason",
    "service_day",
    "late",
)
_OUT_COLUMNS = (
    "status",
    "check_out_at",
    "check_out_received_at",
    "check_out_lat",
    "check_out_lon",
    "check_out_distance_m",
    "items_done",
    "note",
    "minutes",
    "late",
)
_WRITE_IN = _write_statement(_IN_COLUMNS)
_WRITE_OUT = _write_statement(_OUT_COLUMNS)


async def _write(
    session: AsyncSession,
    statement: Any,
    visit_id: uuid.UUID,
    values: dict[str, Any],
    flags: list[tuple[uuid.UUID, anomalies.Flag]],
    box: dict[str, Any],
) -> None:
    await session.execute(
        statement,
        {
            "visit_id": visit_id,
            **{f"set_{k}": value for k, value in values.items()},
            **_flag_rows(flags),
            **box,
        },
    )


def _codes_of(visit_id: Any) -> Any:
    return (
        select(func.coalesce(func.array_agg(aggregate_order_by(VisitFlag.code, VisitFlag.id)), []))
        .where(VisitFlag.visit_id == visit_id)
        .scalar_subquery()
    )


def _facts_of_visit(elders: Any) -> tuple[Any, ...]:
    """What both check-in and check-out read of the visit itself, its home and its flags."""
    return (
        Visit.id,
        Visit.staff_id,
        Visit.status,
        Visit.elder_id,
        Visit.dispatch_id,
        Visit.kind,
        Visit.planned_start,
        Visit.planned_end,
        Visit.check_in_at,
        Visit.late,
        elders.c.lat.label("home_lat"),
        elders.c.lon.label("home_lon"),
        _codes_of(Visit.id).label("codes"),
    )


def _merged(existing: list[str] | None, new: list[anomalies.Flag]) -> list[str]:
    codes = list(existing or [])
    return codes + [f.code for f in new if f.code not in codes]


@_per_shape
def _check_in_facts(principal: Principal) -> Select[Any]:
    """Everything a check-in decides on, in one statement that locks the visit: the visit,
    the home, the org's GPS tolerance, its flags, the caregiver's last check-out before
    ``at`` (12 h back) and the caregiver's other visits still checked in. Parameters:
    ``visit_id``, ``at`` and ``scope_values``."""
    e, prev, other = rm.elders, aliased(Visit), aliased(Visit)
    at = bindparam("at", type_=DateTime(timezone=True))
    previous = (
        select(
            prev.check_out_at.label("prev_at"),
            prev.check_out_lat.label("prev_lat"),
            prev.check_out_lon.label("prev_lon"),
        )
        .where(
            prev.staff_id == Visit.staff_id,
            prev.id != Visit.id,
            prev.check_out_at.is_not(None),
            prev.check_out_at <= at,
            prev.check_out_at >= at - timedelta(hours=12),
        )
        .order_by(prev.check_out_at.desc())
        .limit(1)
        .lateral("prev")
    )
    still_in = (
        other.staff_id == Visit.staff_id,
        other.id != Visit.id,
        other.status == "checked_in",
        other.check_in_at < at,
    )
    return (
        select(
            *_facts_of_visit(e),
            Visit.check_in_lat,
            Visit.check_in_lon,
            Visit.check_in_distance_m,
            select(OrgSettings.gps_tolerance_m)
            .where(OrgSettings.org_id == Visit.org_id)
            .scalar_subquery()
            .label("tolerance"),
            select(func.array_agg(aggregate_order_by(other.id, other.id)))
            .where(*still_in)
            .scalar_subquery()
            .label("still_ids"),
            select(func.array_agg(aggregate_order_by(other.check_in_at, other.id)))
            .where(*still_in)
            .scalar_subquery()
            .label("still_ats"),
            previous.c.prev_at,
            previous.c.prev_lat,
            previous.c.prev_lon,
        )
        .select_from(Visit)
        .outerjoin(e, e.c.id == Visit.elder_id)
        .outerjoin(previous, true())
        .where(Visit.id == bindparam("visit_id"), scope_clause(principal))
        .with_for_update(of=Visit)
    )


async def _facts(
    session: AsyncSession,
    statement: Select[Any],
    principal: Principal,
    visit_id: uuid.UUID,
    at: datetime,
) -> Any:
    row = (
        await session.execute(
            statement, {"visit_id": visit_id, "at": at, **scope_values(principal)}
        )
    ).first()
    if row is None:
        raise NotFound(T(f"未找到上门服务 {visit_id}", f"visit {visit_id} not found"))
    _actor_may_act(principal, row)
    return row


async def check_in(
    *, session: AsyncSession, principal: Principal, visit_id: uuid.UUID, body: CheckIn
) -> tuple[CheckResult, bool]:
    """Arrival at the home. A repeat of the same check-in (a handset retrying, however much
    later) answers what was recorded; returns (result, changed). Two statements in all:
    the facts (``_check_in_facts``) and the write (``_WRITE_IN``)."""
    row = await _facts(session, _check_in_facts(principal), principal, visit_id, body.at)
    if row.check_in_at is not None:
        if row.check_in_at == body.at and (row.check_in_lat, row.check_in_lon) == (
            body.lat,
            body.lon,
        ):
            return _result(row.id, row.status, row.check_in_distance_m, row.codes, row.late), False
        raise Conflict(
            T("该上门服务已签到", "this visit is already checked in"), status_now=row.status
        )
    if row.status == "cancelled":
        raise Conflict(T("该上门服务已取消", "this visit was cancelled"), status_now=row.status)
    if row.staff_id is None:
        raise Conflict(T("该上门服务尚未指派服务人员", "this visit has no caregiver yet"))
    now = datetime.now(UTC)
    _check_time(body.at, now, "at")
    policy = dispatch_policy.load()
    distance = (
        distance_m(row.home_lat, row.home_lon, body.lat, body.lon)
        if row.home_lat is not None and row.home_lon is not None
        else None
    )
    tolerance = row.tolerance if row.tolerance is not None else policy.evv.gps_tolerance_m
    previous = (
        anomalies.Fix(row.prev_at, row.prev_lat, row.prev_lon)
        if row.prev_at is not None and row.prev_lat is not None
        else None
    )
    candidates = [
        anomalies.location(distance, float(tolerance), body.alternate_reason)
        if distance is not None
        else None,
        anomalies.travel(
            previous, anomalies.Fix(body.at, body.lat, body.lon), policy.travel.max_plausible_kmh
        ),
        # another visit of this caregiver is still open at ``at``: they overlap from here on
        anomalies.overlaps(
            (body.at, body.at + timedelta(seconds=policy.evv.overlap_tolerance_s + 1)),
            [
                (vid, since, body.at + timedelta(days=1))
                for vid, since in zip(row.still_ids or [], row.still_ats or [], strict=True)
            ],
            policy.evv.overlap_tolerance_s,
        ),
    ]
    flags = [f for f in candidates if f is not None]
    late = anomalies.is_late(body.at, now, policy.evv.late_after_s)
    await _write(
        session,
        _WRITE_IN,
        row.id,
        {
            "status": "checked_in",
            "check_in_at": body.at,
            "check_in_received_at": now,
            "check_in_lat": body.lat,
            "check_in_lon": body.lon,
            "check_in_distance_m": distance,
            "alternate_reason": body.alternate_reason,
            "service_day": body.at.astimezone(clock.SHANGHAI).date(),
            "late": late,
        },
        [(row.id, f) for f in flags],
        # VISIT mode goes on only while the visit may still be going on (not for the upload
        # of a visit that ended before the handset came back online)
        outbox.visit_mode_values(
            elder_id=row.elder_id,
            visit_id=row.id,
            staff_id=row.staff_id,
            active=True,
            send=body.at + (row.planned_end - row.planned_start) > now,
        ),
    )
    if row.dispatch_id is not None:
        await dispatches.arrived(
            session=session, dispatch_id=row.dispatch_id, at=body.at, staff_id=row.staff_id
        )
    return _result(row.id, "checked_in", distance, _merged(row.codes, flags), late), True


@_per_shape
def _check_out_facts(principal: Principal) -> Select[Any]:
    """Everything a check-out decides on, in one statement that locks the visit: the visit,
    the home, the caregiver's role, the org's medical licence, the visit's flags and the
    caregiver's other visits overlapping [check-in, ``at``]. Parameters as
    ``_check_in_facts``."""
    e, s, o, other, home = rm.elders, rm.staff, rm.orgs, aliased(Visit), aliased(Visit)
    at = bindparam("at", type_=DateTime(timezone=True))
    lo, hi = func.least(Visit.check_in_at, at), func.greatest(Visit.check_in_at, at)
    overlapping = (
        other.staff_id == Visit.staff_id,
        other.id != Visit.id,
        other.check_in_at.is_not(None),
        other.check_in_at < hi,
        or_(other.check_out_at.is_(None), other.check_out_at > lo),
    )

    def agg(column: Any, label: str) -> Any:
        return (
            select(func.array_agg(aggregate_order_by(column, other.id)))
            .where(*overlapping)
            .scalar_subquery()
            .label(label)
        )

    return (
        select(
            *_facts_of_visit(e),
            Visit.check_out_at,
            Visit.check_out_lat,
            Visit.check_out_lon,
            Visit.check_out_distance_m,
            s.c.role.label("staff_role"),
            o.c.medical_license,
            o.c.medical_license_valid_until,
            agg(other.id, "other_ids"),
            agg(other.check_in_at, "other_ins"),
            agg(other.check_out_at, "other_outs"),
            outbox.visit_mode_was_sent(Visit.id, True).label("mode_on"),
            exists()
            .where(
                home.elder_id == Visit.elder_id, home.id != Visit.id, home.status == "checked_in"
            )
            .label("someone_else_in"),
        )
        .select_from(Visit)
        .outerjoin(e, e.c.id == Visit.elder_id)
        .outerjoin(s, s.c.id == Visit.staff_id)
        .outerjoin(o, o.c.id == Visit.org_id)
        .where(Visit.id == bindparam("visit_id"), scope_clause(principal))
        .with_for_update(of=Visit)
    )


async def check_out(
    *, session: AsyncSession, principal: Principal, visit_id: uuid.UUID, body: CheckOut
) -> tuple[CheckResult, bool]:
    """Departure: items done, note, duration and overlap checks. A repeat of the same
    check-out (a handset retrying, days later if it was offline) answers what was recorded
    and changes nothing; returns (result, changed)."""
    row = await _facts(session, _check_out_facts(principal), principal, visit_id, body.at)
    if row.check_out_at is not None:
        if row.check_out_at == body.at and (row.check_out_lat, row.check_out_lon) == (
            body.lat,
            body.lon,
        ):
            return _result(row.id, row.status, row.check_out_distance_m, row.codes, row.late), False
        raise Conflict(
            T("该上门服务已签退", "this visit is already checked out"), status_now=row.status
        )
    if row.status != "checked_in" or row.check_in_at is None:
        raise Conflict(
            T("尚未签到，不能签退", "check in before checking out"), status_now=row.status
        )
    now = datetime.now(UTC)
    _check_time(body.at, now, "at")
    policy = dispatch_policy.load()
    done: list[str] = []
    if body.items_done:
        cat = await catalogue.load(session=session)
        done = cat.resolve(body.items_done, field="items_done")
        catalogue.check_qualified(
            cat,
            done,
            staff_role=row.staff_role,
            medical_license_valid=catalogue.licence_valid(
                row.medical_license, row.medical_license_valid_until, clock.today()
            ),
            field="items_done",
        )
    distance = (
        distance_m(row.home_lat, row.home_lon, body.lat, body.lon)
        if row.home_lat is not None and row.home_lon is not None
        else None
    )
    planned = (row.planned_end - row.planned_start).total_seconds() / 60.0
    duration = anomalies.duration(
        row.check_in_at,
        body.at,
        planned,
        short_ratio=policy.evv.too_short_ratio,
        long_ratio=policy.evv.too_long_ratio,
    )
    if (
        row.kind == "emergency"
        and duration is not None
        and duration.code != anomalies.OUT_BEFORE_IN
    ):
        duration = None  # an emergency has no planned length to fall short of or overrun
    flags = [f for f in (duration, anomalies.items(done)) if f is not None]
    start, end = min(row.check_in_at, body.at), max(row.check_in_at, body.at)
    others = [
        (vid, since, until or now)
        for vid, since, until in zip(
            row.other_ids or [], row.other_ins or [], row.other_outs or [], strict=True
        )
    ]
    overlap = anomalies.overlaps((start, end), others, policy.evv.overlap_tolerance_s)
    rows = []
    if overlap:
        flags.append(overlap)
        rows += [  # the other visit is just as doubtful
            (
                uuid.UUID(o["visit_id"]),
                anomalies.Flag(
                    anomalies.OVERLAP,
                    {"with": [{"visit_id": str(row.id), "seconds": o["seconds"]}]},
                ),
            )
            for o in overlap.detail["with"]
        ]
    late = row.late or anomalies.is_late(body.at, now, policy.evv.late_after_s)
    await _write(
        session,
        _WRITE_OUT,
        row.id,
        {
            "status": "checked_out",
            "check_out_at": body.at,
            "check_out_received_at": now,
            "check_out_lat": body.lat,
            "check_out_lon": body.lon,
            "check_out_distance_m": distance,
            "items_done": done,
            "note": body.note,
            "minutes": max(0, int((body.at - row.check_in_at).total_seconds() // 60)),
            "late": late,
        },
        [(row.id, f) for f in flags] + rows,
        # off only what this visit switched on, and not while another visit is in the home
        # (telemetry's VISIT mode is one per home)
        outbox.visit_mode_values(
            elder_id=row.elder_id,
            visit_id=row.id,
            staff_id=row.staff_id,
            active=False,
            send=bool(row.mode_on) and not row.someone_else_in,
        ),
    )
    if row.dispatch_id is not None:
        await dispatches.resolve(
            session=session,
            dispatch_id=row.dispatch_id,
            actor=f"staff:{row.staff_id}",
            note=body.note or "caregiver checked out",
        )
    return _result(row.id, "checked_out", distance, _merged(row.codes, flags), late), True


async def review_flag(
    *,
    session: AsyncSession,
    principal: Principal,
    visit_id: uuid.UUID,
    code: str,
    review: FlagReview,
) -> VisitFlag:
    """A supervisor clears (the visit counts again) or confirms (it stays excluded) a flag,
    with a reason code and a note; audited."""
    if principal.role not in REVIEWERS:
        raise Forbidden(T("只有主管可以复核异常", "only a supervisor may review flags"))
    visit = await get(session=session, principal=principal, visit_id=visit_id)
    flag = await session.scalar(
        select(VisitFlag)
        .where(VisitFlag.visit_id == visit.id, VisitFlag.code == code)
        .with_for_update()
    )
    if flag is None:
        raise NotFound(T(f"该上门服务没有异常 {code}", f"visit has no flag {code}"))
    flag.status = "cleared" if review.decision == "clear" else "confirmed"
    flag.reviewed_at = datetime.now(UTC)
    flag.reviewed_by = principal.sub
    flag.reason_code = review.reason_code
    flag.review_note = review.note
    await audit.record(
        session,
        service="dispatch",
        principal=principal,
        action=f"visit_flag.{review.decision}",
        resource_type="visit",
        resource_id=visit.id,
        fields=[code, review.reason_code],
    )
    await session.flush()
    return flag


async def to_read(session: AsyncSession, visit: Visit) -> VisitRead:
    return (await to_reads(session, [visit]))[0]


async def to_reads(session: AsyncSession, visits: list[Visit]) -> list[VisitRead]:
    """Reads of these visits with their flags (one query for all of them)."""
    flags: dict[uuid.UUID, list[FlagRead]] = {v.id: [] for v in visits}
    if visits:
        for f in await session.scalars(
            select(VisitFlag).where(VisitFlag.visit_id.in_(list(flags))).order_by(VisitFlag.id)
        ):
            flags[f.visit_id].append(FlagRead.model_validate(f))
    out = []
    for visit in visits:
        read = VisitRead.model_validate(visit)
        read.flags = flags[visit.id]
        read.evv = Evv(
            service_type=visit.items_done or visit.items,
            recipient=visit.elder_id,
            date=visit.service_day,
            location={
                "check_in": None
                if visit.check_in_lat is None
                else {"lat": visit.check_in_lat, "lon": visit.check_in_lon},
                "check_out": None
                if visit.check_out_lat is None
                else {"lat": visit.check_out_lat, "lon": visit.check_out_lon},
            },
            provider=visit.staff_id,
            begin=visit.check_in_at,
            end=visit.check_out_at,
        )
        out.append(read)
    return out


async def route_of(
    *, session: AsyncSession, staff_id: uuid.UUID, lo: datetime, hi: datetime
) -> list[Visit]:
    """A caregiver's visits planned in [lo, hi) in route order, and any still checked in."""
    return list(
        await session.scalars(
            select(Visit)
            .where(
                Visit.staff_id == staff_id,
                Visit.status != "cancelled",
                and_(Visit.planned_start >= lo, Visit.planned_start < hi)
                | (Visit.status == "checked_in"),
            )
            .order_by(Visit.route_seq.nulls_last(), Visit.planned_start)
        )
    )


async def of_day(
    *,
    session: AsyncSession,
    org_id: uuid.UUID,
    lo: datetime,
    hi: datetime,
    station_id: uuid.UUID | None,
    lock: bool,
) -> list[Visit]:
    """An org's (or one station's) visits planned in [lo, hi), not cancelled; ``lock`` holds
    them while a new assignment is written."""
    stmt = select(Visit).where(
        Visit.org_id == org_id,
        Visit.planned_start >= lo,
        Visit.planned_start < hi,
        Visit.status != "cancelled",
    )
    if station_id:
        stmt = stmt.where(Visit.station_id == station_id)
    if lock:
        stmt = stmt.with_for_update()
    return list(await session.scalars(stmt.order_by(Visit.planned_start, Visit.id)))


async def assign(
    *,
    session: AsyncSession,
    visits: dict[str, Visit],
    routes: dict[str, list[str]],
    etas: dict[str, float],
    day: date,
    unavailable: set[uuid.UUID],
) -> None:
    """Write a day's assignment onto its planned visits: caregiver, route order and ETA
    (minutes after midnight, Asia/Shanghai). A visit left out loses its place in any route,
    and its caregiver too when that caregiver is off sick."""
    midnight = datetime.combine(day, time.min, tzinfo=clock.SHANGHAI)
    placed = set()
    for wid, stops in routes.items():
        for seq, vid in enumerate(stops):
            v = visits[vid]
            v.staff_id, v.route_seq = uuid.UUID(wid), seq
            v.eta = midnight + timedelta(minutes=etas[vid])
            placed.add(vid)
    for vid, v in visits.items():
        if vid not in placed:
            if v.staff_id in unavailable:
                v.staff_id = None
            v.route_seq = v.eta = None
    await session.flush()


async def excluded(
    *, session: AsyncSession, bed_ids: list[uuid.UUID], first: date, until: date
) -> list[Any]:
    """Checked-out visits of these beds in [first, until) that do not count: each with the
    codes of its open or confirmed flags."""
    if not bed_ids:
        return []
    rows = await session.execute(
        select(
            Visit.id,
            Visit.bed_id,
            Visit.service_day,
            Visit.minutes,
            func.array_agg(aggregate_order_by(VisitFlag.code, VisitFlag.code)).label("codes"),
        )
        .join(VisitFlag, VisitFlag.visit_id == Visit.id)
        .where(
            Visit.bed_id.in_(bed_ids),
            Visit.status == "checked_out",
            Visit.service_day >= first,
            Visit.service_day < until,
            VisitFlag.status.in_(("open", "confirmed")),
        )
        .group_by(Visit.id)
        .order_by(Visit.service_day, Visit.id)
    )
    return list(rows)
