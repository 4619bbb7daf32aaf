"""Per-elder monitoring settings (threshold overrides, the home's schedule: what "daytime"
and "night" mean for the behaviour rules) and VISIT mode.

VISIT mode: dispatch (or the caregiver's app) says a caregiver is in the home. While it is
on, behaviour alerts (inactivity, night bed exit) for that elder are suppressed; emergencies
and falls never are (``alerts/rules.py: suppressed``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.telemetry.monitoring import service
from services.telemetry.monitoring.schemas import MonitoringSettings, VisitModeIn, VisitModeRead
from shared import scoping
from shared.auth import Principal, Role, StaffReader, require_roles
from shared.uow import SessionDep

router = APIRouter(tags=["monitoring settings"])

Reader = StaffReader
Editor = require_roles(Role.admin, Role.community, Role.org_admin)
VisitSetter = require_roles(Role.admin, Role.org_admin, Role.caregiver, Role.service)


@router.get(
    "/v1/elders/{elder_id}/monitoring",
    response_model=MonitoringSettings,
    summary="The elder's threshold overrides and schedule (empty = defaults)",
)
async def get_settings(
    elder_id: uuid.UUID, session: SessionDep, principal: Principal = Reader
) -> MonitoringSettings:
    await scoping.require_elder(session, principal, elder_id)
    return await service.get_settings(session=session, elder_id=elder_id)


@router.put(
    "/v1/elders/{elder_id}/monitoring",
    response_model=MonitoringSettings,
    summary="Replace the elder's overrides (e.g. a COPD patient's SpO2 baseline)",
)
async def put_settings(
    elder_id: uuid.UUID,
    body: MonitoringSettings,
    session: SessionDep,
    principal: Principal = Editor,
) -> MonitoringSettings:
    await scoping.require_elder(session, principal, elder_id)
    return await service.put_settings(session=session, elder_id=elder_id, settings_in=body)


@router.put(
    "/v1/elders/{elder_id}/visit-mode",
    response_model=VisitModeRead,
    tags=["visit mode"],
    summary="Caregiver checked in (active) or out: behaviour alerts pause meanwhile",
)
async def set_visit_mode(
    elder_id: uuid.UUID, body: VisitModeIn, session: SessionDep, principal: Principal = VisitSetter
) -> VisitModeRead:
    await scoping.require_elder(session, principal, elder_id)
    staff = await service.visit_staff(
        session=session,
        principal=principal,
        elder_id=elder_id,
        staff_id=body.staff_id,
        active=body.active,
    )
    if not body.active:
        return await service.end_visit(session=session, elder_id=elder_id)
    return await service.start_visit(
        session=session, elder_id=elder_id, staff_id=staff, visit_ref=body.visit_ref
    )
