from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import directory
from services.dispatch import policy as dispatch_policy
from services.dispatch.catalogue import service as catalogue
from services.dispatch.plans import generator
from services.dispatch.plans.models import Plan
from services.dispatch.plans.schemas import PlanCreate
from shared import clock, scoping
from shared.auth import Principal, Role
from shared.errors import NotFound, Unprocessable
from shared.i18n import T


def scope_clause(principal: Principal) -> ColumnElement[bool]:
    if principal.role is Role.caregiver:  # its own plans: the visits it usually makes
        return Plan.staff_id == principal.staff
    if principal.role is Role.org_admin:
        return Plan.org_id == principal.org
    if principal.role in (Role.admin, Role.street, Role.community, Role.service):
        return scoping.by_elder(principal, Plan.elder_id)
    return false()  # family members see nothing operational


def readable_statement(principal: Principal) -> Select[tuple[Plan]]:
    return select(Plan).where(scope_clause(principal))


async def get(*, session: AsyncSession, principal: Principal, plan_id: uuid.UUID) -> Plan:
    plan = await session.scalar(readable_statement(principal).where(Plan.id == plan_id))
    if plan is None:
        raise NotFound(T(f"未找到服务计划 {plan_id}", f"plan {plan_id} not found"))
    return plan


async def create(
    *, session: AsyncSession, principal: Principal, plan_in: PlanCreate
) -> tuple[Plan, int]:
    bed = await directory.bed(
        session=session, principal=principal, bed_id=plan_in.bed_id, field="bed_id"
    )
    if bed.status not in ("active", "applied"):
        raise Unprocessable(
            T(f"床位状态为 {bed.status}", f"a {bed.status} bed takes no plan"),
            errors=[("bed_id", T("床位未在服务中", "the bed is not in service"))],
        )
    cat = await catalogue.load(session=session)
    codes = cat.resolve(plan_in.items, field="items")
    staff = None
    if plan_in.staff_id is not None:
        staff = await directory.staff_member(
            session=session, staff_id=plan_in.staff_id, org_id=bed.org_id
        )
    catalogue.check_qualified(
        cat,
        codes,
        staff_role=staff.role if staff is not None else None,
        medical_license_valid=catalogue.licence_valid(
            bed.medical_license, bed.medical_license_valid_until, clock.today()
        ),
    )
    today = clock.today()
    plan = Plan(
        bed_id=bed.bed_id,
        elder_id=bed.elder_id,
        org_id=bed.org_id,
        station_id=bed.station_id,
        staff_id=plan_in.staff_id,
        rrule=plan_in.rrule,
        working_days_only=plan_in.working_days_only,
        start_time=plan_in.start_time,
        duration_minutes=plan_in.duration_minutes,
        items=codes,
        valid_from=plan_in.valid_from or today,
        valid_to=plan_in.valid_to,
        active=True,
    )
    session.add(plan)
    await session.flush()
    made = await generator.generate(
        session=session,
        plan=plan,
        until=today + timedelta(days=dispatch_policy.load().horizon_days),
        today=today,
    )
    return plan, made
