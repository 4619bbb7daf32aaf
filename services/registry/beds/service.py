"""Beds: eligibility at creation, the lifecycle, and modifications."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import backdating
from services.registry.assessments import service as assessments
from services.registry.beds import eligibility
from services.registry.beds.models import OPEN_STATUSES, Bed, BedEvent, Modification
from services.registry.beds.schemas import BedCreate, BedTransition, ModificationCreate
from services.registry.caregivers import service as caregivers
from services.registry.elders import service as elders
from services.registry.elders.models import Elder
from services.registry.orgs import service as orgs
from shared import clock, scoping
from shared.auth import Principal, Role
from shared.errors import Conflict, Forbidden, NotFound, Problem, Unprocessable
from shared.i18n import T
from shared.pagination import Page, paginate
from shared.pii import age_on
from shared.policy import Policy, bed_policy_for, policy_by_code

STATUS_ZH = {"applied": "已申请", "active": "运行中", "suspended": "已暂停", "terminated": "已终止"}
ACTION_ZH = {"activate": "启用", "suspend": "暂停", "resume": "恢复", "terminate": "终止"}

# status → the steps allowed from it (action → new status)
TRANSITIONS: dict[str, dict[str, str]] = {
    "applied": {"activate": "active", "terminate": "terminated"},
    "active": {"suspend": "suspended", "terminate": "terminated"},
    "suspended": {"resume": "active", "terminate": "terminated"},
    "terminated": {},
}


def ineligible(policy: Policy, reasons: list[eligibility.Reason]) -> Problem:
    """The refusal, with every reason (a rejection notice must state them all)."""
    return Problem(
        T("老人不符合家庭养老床位条件", "the elder is not eligible for a home care bed"),
        status=422,
        slug="bed-ineligible",
        title=T("不符合家庭养老床位条件", "Not eligible for a home care bed"),
        policy_code=policy.code,
        reasons=[r.as_dict() for r in reasons],
    )


def scope_clause(principal: Principal) -> ColumnElement[bool]:
    return scoping.bed_scope(principal, Bed.__table__, Elder.__table__)


def readable_statement(principal: Principal) -> Select[tuple[Bed]]:
    return select(Bed).where(scope_clause(principal))


async def get(*, session: AsyncSession, principal: Principal, bed_id: uuid.UUID) -> Bed:
    bed = await session.scalar(readable_statement(principal).where(Bed.id == bed_id))
    if bed is None:
        raise NotFound(T(f"未找到床位 {bed_id}", f"bed {bed_id} not found"))
    return bed


async def evaluate(
    *, session: AsyncSession, elder: Elder, day: date, except_bed: uuid.UUID | None = None
) -> tuple[Policy, list[eligibility.Reason]]:
    """Eligibility of ``elder`` on ``day``; ``except_bed`` is the bed being activated."""
    try:
        policy = bed_policy_for(elder.residence_region, day)
    except LookupError:
        # No bed policy where the elder lives, on that day: a refusal, not a server error.
        region = elder.residence_region
        raise Unprocessable(
            T(
                f"{day} 时老人居住地 {region} 没有适用的家庭养老床位政策",
                f"no home care bed policy covers the elder's residence {region} on {day}",
            ),
            slug="no-bed-policy",
            errors=[("elder_id", T("居住地没有适用的床位政策", "no bed policy where they live"))],
        ) from None
    open_beds = select(Bed.id).where(Bed.elder_id == elder.id, Bed.status.in_(OPEN_STATUSES))
    if except_bed is not None:
        open_beds = open_beds.where(Bed.id != except_bed)
    open_bed = await session.scalar(open_beds.limit(1))
    # The assessment in force on ``day``, not the latest: a later assessment cannot make a
    # bed that started earlier eligible retroactively.
    assessment = await assessments.in_force(session=session, elder_id=elder.id, day=day)
    level = assessment.level if assessment else None
    valid_until = assessment.valid_until if assessment else None
    facts = eligibility.ElderFacts(
        age=age_on(elder.birth_date, day),
        lives_at_home=elder.lives_at_home,
        living_arrangement=elder.living_arrangement,
        deceased_on=elder.deceased_on,
        level=level,
        level_valid_until=valid_until,
        has_coresident_caregiver=await caregivers.has_coresident(session=session, elder=elder),
        has_open_bed=open_bed is not None,
    )
    assert policy.bed is not None
    return policy, eligibility.check(facts, policy.bed, day)


async def create(
    *, session: AsyncSession, principal: Principal, bed_in: BedCreate, today: date
) -> Bed:
    if principal.role is Role.org_admin and bed_in.org_id != principal.org:
        raise Forbidden(T("机构只能为本机构开设床位", "an org may open beds only for itself"))
    try:
        elder = await elders.get(session=session, principal=principal, elder_id=bed_in.elder_id)
    except NotFound:
        raise Unprocessable(
            T(f"未找到老人 {bed_in.elder_id}", f"elder {bed_in.elder_id} not found"),
            errors=[("elder_id", T("你的范围内没有这位老人", "no such elder in your scope"))],
        ) from None
    try:
        org = await orgs.get(
            session=session, principal=Principal(sub="-", role=Role.service), org_id=bed_in.org_id
        )
    except NotFound:
        raise Unprocessable(
            T(f"未找到机构 {bed_in.org_id}", f"org {bed_in.org_id} not found"),
            errors=[("org_id", T("没有这个机构", "no such org"))],
        ) from None
    await orgs.get_station(session=session, org_id=org.id, station_id=bed_in.station_id)
    backdated = False
    if bed_in.started_on is not None:
        backdated = backdating.check(
            bed_in.started_on,
            today,
            principal=principal,
            reason=bed_in.backdate_reason,
            field="started_on",
            reason_field="backdate_reason",
        )
    # Serialise bed creation per elder so two concurrent requests cannot both pass the check.
    await session.execute(select(Elder.id).where(Elder.id == elder.id).with_for_update())
    day = bed_in.started_on or today
    policy, reasons = await evaluate(session=session, elder=elder, day=day)
    if reasons:
        raise ineligible(policy, reasons)
    active = bed_in.status == "active"
    bed = Bed(
        elder_id=elder.id,
        org_id=org.id,
        station_id=bed_in.station_id,
        status=bed_in.status,
        policy_code=policy.code,
        # a bed recorded after the fact was applied for no later than it started
        applied_on=min(today, day),
        started_on=day if active else None,
        backdate_reason=bed_in.backdate_reason,
    )
    session.add(bed)
    await session.flush()
    session.add(
        BedEvent(
            bed_id=bed.id,
            from_status=None,
            to_status=bed.status,
            effective_on=day if active else today,
            reason=bed_in.backdate_reason,
            actor=principal.sub,
        )
    )
    if backdated:
        await backdating.audit_backdating(
            session,
            principal=principal,
            resource_type="bed",
            resource_id=bed.id,
            field="started_on",
            day=day,
        )
    await session.flush()
    return bed


async def transition(
    *,
    session: AsyncSession,
    principal: Principal,
    bed: Bed,
    action: str,
    step: BedTransition,
    today: date,
) -> Bed:
    new_status = TRANSITIONS[bed.status].get(action)
    if new_status is None:
        raise Conflict(
            T(
                f"{STATUS_ZH[bed.status]}的床位不能{ACTION_ZH[action]}",
                f"a {bed.status} bed cannot be {action}d",
            ),
            allowed=sorted(TRANSITIONS[bed.status]),
        )
    on = step.on or today
    last = bed.suspended_on or bed.started_on or bed.applied_on
    if on < last:
        raise Unprocessable(
            T(
                f"{ACTION_ZH[action]}日期 {on} 早于床位上次变更日期 {last}",
                f"{action} date {on} is before the bed's last change on {last}",
            ),
            errors=[("on", T(f"不能早于 {last}", f"must not be before {last}"))],
        )
    if action == "terminate" and not step.reason:
        raise Unprocessable(
            T("终止床位需要说明原因", "a termination needs a reason"),
            errors=[("reason", T("必填", "required"))],
        )
    if action == "activate":
        backdated = backdating.check(
            on, today, principal=principal, reason=step.reason, field="on", reason_field="reason"
        )
        if backdated:
            await backdating.audit_backdating(
                session,
                principal=principal,
                resource_type="bed",
                resource_id=bed.id,
                field="started_on",
                day=on,
            )
            bed.backdate_reason = step.reason
        elder = await session.get(Elder, bed.elder_id)
        assert elder is not None
        policy, reasons = await evaluate(session=session, elder=elder, day=on, except_bed=bed.id)
        if reasons:
            raise ineligible(policy, reasons)
        bed.started_on = on
    elif action == "suspend":
        bed.suspended_on = on
    elif action == "resume":
        bed.suspended_on = None
    elif action == "terminate":
        bed.terminated_on = on
        bed.termination_reason = step.reason
    session.add(
        BedEvent(
            bed_id=bed.id,
            from_status=bed.status,
            to_status=new_status,
            effective_on=on,
            reason=step.reason,
            actor=principal.sub,
        )
    )
    bed.status = new_status
    await session.flush()
    return bed


async def list_page(
    *,
    session: AsyncSession,
    principal: Principal,
    org: uuid.UUID | None,
    status: str | None,
    elder_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> Page[Bed]:
    stmt = readable_statement(principal)
    if org:
        stmt = stmt.where(Bed.org_id == org)
    if status:
        stmt = stmt.where(Bed.status == status)
    if elder_id:
        stmt = stmt.where(Bed.elder_id == elder_id)
    return await paginate(session, stmt, key=Bed.id, cursor=cursor, limit=limit)


async def events(
    *, session: AsyncSession, bed: Bed, cursor: str | None, limit: int
) -> Page[BedEvent]:
    """The bed's history in the order it was recorded (ids are time-ordered)."""
    stmt = select(BedEvent).where(BedEvent.bed_id == bed.id)
    return await paginate(session, stmt, key=BedEvent.id, cursor=cursor, limit=limit)


async def add_modification(
    *, session: AsyncSession, bed: Bed, mod_in: ModificationCreate
) -> Modification:
    if bed.status == "terminated":
        raise Conflict(T("已终止的床位不能再登记改造", "a terminated bed takes no modifications"))
    policy = policy_by_code(bed.policy_code)
    assert policy.bed is not None
    minimum = mod_in.done_on + timedelta(days=policy.bed.modification_warranty_days)
    warranty = mod_in.warranty_until or minimum
    if warranty < minimum:
        days = policy.bed.modification_warranty_days
        raise Unprocessable(
            T(f"质保期至少 {days} 天", f"warranty must last at least {days} days"),
            errors=[("warranty_until", T(f"不能早于 {minimum}", f"must be on or after {minimum}"))],
        )
    if mod_in.done_on > clock.today():
        raise Unprocessable(
            T("改造完成日期不能晚于今天", "work cannot be done in the future"),
            errors=[("done_on", T("不能晚于今天", "must not be in the future"))],
        )
    modification = Modification(
        bed_id=bed.id,
        kind=mod_in.kind,
        item=mod_in.item,
        cost_fen=mod_in.cost_fen,
        done_on=mod_in.done_on,
        warranty_until=warranty,
        vendor=mod_in.vendor,
    )
    session.add(modification)
    await session.flush()
    return modification


async def modifications(
    *, session: AsyncSession, bed: Bed, cursor: str | None, limit: int
) -> Page[Modification]:
    stmt = select(Modification).where(Modification.bed_id == bed.id)
    key = (Modification.done_on, Modification.id)
    return await paginate(session, stmt, key=key, cursor=cursor, limit=limit)
