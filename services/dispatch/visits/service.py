"""Visits: creation (items from the catalogue, qualifications), check-in and check-out with
EVV and anomaly flags, supervisor review; scoped reads."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

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
        return Visit.staff_id == principal.staff
    if role is Role.org_admin:
        return Visit.org_id == principal.org
    if role in (Role.admin, Role.street, Role.community, Role.family, Role.service):
        return scoping.by_elder(principal, Visit.elder_id)
    return false()


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


def _actor_may_act(principal: Principal, visit: Visit) -> None:
    if principal.role is Role.caregiver and visit.staff_id != principal.staff:
        raise Forbidden(
            T("只有被指派的服务人员可以签到签退", "only the assigned caregiver may check in or out")
        )
    if principal.role not in (Role.caregiver, Role.org_admin, Role.admin):
        raise Forbidden(T("该角色不能签到签退", "this role may not check in or out"))


async def _tolerance(session: AsyncSession, org_id: uuid.UUID) -> float:
    own = await session.scalar(
        select(OrgSettings.gps_tolerance_m).where(OrgSettings.org_id == org_id)
    )
    return float(own) if own is not None else dispatch_policy.load().evv.gps_tolerance_m


async def _raise_flags(
    session: AsyncSession, visit_id: uuid.UUID, flags: list[anomalies.Flag]
) -> None:
    if flags:
        await session.execute(
            insert(VisitFlag)
            .values(
                [
                    {"visit_id": visit_id, "code": f.code, "detail": f.detail, "status": "open"}
                    for f in flags
                ]
            )
            .on_conflict_do_nothing(index_elements=["visit_id", "code"])
        )


async def flag_codes(session: AsyncSession, visit_id: uuid.UUID) -> list[str]:
    return list(
        await session.scalars(
            select(VisitFlag.code).where(VisitFlag.visit_id == visit_id).order_by(VisitFlag.id)
        )
    )


async def _result(session: AsyncSession, visit: Visit, distance: float | None) -> CheckResult:
    return CheckResult(
        visit_id=visit.id,
        status=visit.status,  # type: ignore[arg-type]
        distance_m=None if distance is None else round(distance, 1),
        flags=await flag_codes(session, visit.id),
        late=visit.late,
    )


async def check_in(
    *, session: AsyncSession, principal: Principal, visit_id: uuid.UUID, body: CheckIn
) -> tuple[CheckResult, bool]:
    """Arrival at the home. A repeat of the same check-in (a handset retrying, however much
    later) answers the first result; returns (result, changed)."""
    visit = await get(session=session, principal=principal, visit_id=visit_id, for_update=True)
    _actor_may_act(principal, visit)
    if visit.check_in_at is not None:
        if visit.check_in_at == body.at and (visit.check_in_lat, visit.check_in_lon) == (
            body.lat,
            body.lon,
        ):
            return await _result(session, visit, visit.check_in_distance_m), False
        raise Conflict(
            T("该上门服务已签到", "this visit is already checked in"), status_now=visit.status
        )
    if visit.status == "cancelled":
        raise Conflict(T("该上门服务已取消", "this visit was cancelled"), status_now=visit.status)
    if visit.staff_id is None:
        raise Conflict(T("该上门服务尚未指派服务人员", "this visit has no caregiver yet"))
    now = datetime.now(UTC)
    _check_time(body.at, now, "at")
    policy = dispatch_policy.load()
    home = await directory.elder(session=session, elder_id=visit.elder_id)
    distance = (
        distance_m(home.lat, home.lon, body.lat, body.lon)
        if home is not None and home.lat is not None and home.lon is not None
        else None
    )
    flags: list[anomalies.Flag] = []
    if distance is not None:
        flag = anomalies.location(
            distance, await _tolerance(session, visit.org_id), body.alternate_reason
        )
        if flag:
            flags.append(flag)
    previous = (
        await session.execute(
            select(Visit.check_out_at, Visit.check_out_lat, Visit.check_out_lon)
            .where(
                Visit.staff_id == visit.staff_id,
                Visit.id != visit.id,
                Visit.check_out_at.is_not(None),
                Visit.check_out_at <= body.at,
                Visit.check_out_at >= body.at - timedelta(hours=12),
            )
            .order_by(Visit.check_out_at.desc())
            .limit(1)
        )
    ).first()
    if previous is not None and previous.check_out_lat is not None:
        flag = anomalies.travel(
            anomalies.Fix(previous.check_out_at, previous.check_out_lat, previous.check_out_lon),
            anomalies.Fix(body.at, body.lat, body.lon),
            policy.travel.max_plausible_kmh,
        )
        if flag:
            flags.append(flag)
    still_in = (
        await session.execute(
            select(Visit.id, Visit.check_in_at).where(
                Visit.staff_id == visit.staff_id,
                Visit.id != visit.id,
                Visit.status == "checked_in",
                Visit.check_in_at < body.at,
            )
        )
    ).all()
    flag = anomalies.overlaps(
        (body.at, body.at + timedelta(seconds=policy.evv.overlap_tolerance_s + 1)),
        [(r.id, r.check_in_at, body.at + timedelta(days=1)) for r in still_in],
        policy.evv.overlap_tolerance_s,
    )
    if flag:
        flags.append(flag)
    visit.status = "checked_in"
    visit.check_in_at = body.at
    visit.check_in_received_at = now
    visit.check_in_lat, visit.check_in_lon = body.lat, body.lon
    visit.check_in_distance_m = distance
    visit.alternate_reason = body.alternate_reason
    visit.service_day = body.at.astimezone(clock.SHANGHAI).date()
    visit.late = anomalies.is_late(body.at, now, policy.evv.late_after_s)
    await session.flush()
    await _raise_flags(session, visit.id, flags)
    await outbox.visit_mode(
        session=session,
        elder_id=visit.elder_id,
        visit_id=visit.id,
        staff_id=visit.staff_id,
        active=True,
    )
    if visit.dispatch_id is not None:
        await dispatches.arrived(
            session=session, dispatch_id=visit.dispatch_id, at=body.at, staff_id=visit.staff_id
        )
    return await _result(session, visit, distance), True


async def check_out(
    *, session: AsyncSession, principal: Principal, visit_id: uuid.UUID, body: CheckOut
) -> tuple[CheckResult, bool]:
    visit = await get(session=session, principal=principal, visit_id=visit_id, for_update=True)
    _actor_may_act(principal, visit)
    if visit.check_out_at is not None:
        if visit.check_out_at == body.at and (visit.check_out_lat, visit.check_out_lon) == (
            body.lat,
            body.lon,
        ):
            return await _result(session, visit, visit.check_out_distance_m), False
        raise Conflict(
            T("该上门服务已签退", "this visit is already checked out"), status_now=visit.status
        )
    if visit.status != "checked_in" or visit.check_in_at is None:
        raise Conflict(
            T("尚未签到，不能签退", "check in before checking out"), status_now=visit.status
        )
    now = datetime.now(UTC)
    _check_time(body.at, now, "at")
    policy = dispatch_policy.load()
    cat = await catalogue.load(session=session)
    done = cat.resolve(body.items_done, field="items_done")
    if done:
        staff = await directory.staff_member(
            session=session, staff_id=visit.staff_id, field="items_done"
        )
        bed = await directory.bed(
            session=session, principal=Principal(sub="-", role=Role.service), bed_id=visit.bed_id
        )
        catalogue.check_qualified(
            cat,
            done,
            staff_role=staff.role,
            medical_license_valid=catalogue.licence_valid(
                bed.medical_license, bed.medical_license_valid_until, clock.today()
            ),
            field="items_done",
        )
    home = await directory.elder(session=session, elder_id=visit.elder_id)
    distance = (
        distance_m(home.lat, home.lon, body.lat, body.lon)
        if home is not None and home.lat is not None
        else None
    )
    planned = (visit.planned_end - visit.planned_start).total_seconds() / 60.0
    flags = [
        f
        for f in (
            anomalies.duration(
                visit.check_in_at,
                body.at,
                planned,
                short_ratio=policy.evv.too_short_ratio,
                long_ratio=policy.evv.too_long_ratio,
            ),
            anomalies.items(done),
        )
        if f is not None
    ]
    start, end = min(visit.check_in_at, body.at), max(visit.check_in_at, body.at)
    others = (
        await session.execute(
            select(Visit.id, Visit.check_in_at, func.coalesce(Visit.check_out_at, now)).where(
                Visit.staff_id == visit.staff_id,
                Visit.id != visit.id,
                Visit.check_in_at.is_not(None),
                Visit.check_in_at < end,
                or_(Visit.check_out_at.is_(None), Visit.check_out_at > start),
            )
        )
    ).all()
    overlap = anomalies.overlaps(
        (start, end), [tuple(r) for r in others], policy.evv.overlap_tolerance_s
    )
    if overlap:
        flags.append(overlap)
        for other in overlap.detail["with"]:  # the other visit is just as doubtful
            await _raise_flags(
                session,
                uuid.UUID(other["visit_id"]),
                [
                    anomalies.Flag(
                        anomalies.OVERLAP,
                        {"with": [{"visit_id": str(visit.id), "seconds": other["seconds"]}]},
                    )
                ],
            )
    visit.status = "checked_out"
    visit.check_out_at = body.at
    visit.check_out_received_at = now
    visit.check_out_lat, visit.check_out_lon = body.lat, body.lon
    visit.check_out_distance_m = distance
    visit.items_done = done
    visit.note = body.note
    visit.minutes = max(0, int((body.at - visit.check_in_at).total_seconds() // 60))
    visit.late = visit.late or anomalies.is_late(body.at, now, policy.evv.late_after_s)
    await session.flush()
    await _raise_flags(session, visit.id, flags)
    await outbox.visit_mode(
        session=session,
        elder_id=visit.elder_id,
        visit_id=visit.id,
        staff_id=visit.staff_id,
        active=False,
    )
    if visit.dispatch_id is not None:
        await dispatches.resolve(
            session=session,
            dispatch_id=visit.dispatch_id,
            actor=f"staff:{visit.staff_id}",
            note=body.note or "caregiver checked out",
        )
    return await _result(session, visit, distance), True


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
