"""VISIT mode: dispatch (or the caregiver's app) says a caregiver is in the home.

While it is on, behaviour alerts (inactivity, night bed exit) for that elder are suppressed;
emergencies and falls never are (``alerts/rules.py: suppressed``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from services.registry.elders import service as elders
from services.telemetry.alerts.models import VisitMode
from shared.auth import Principal, Role, require_roles
from shared.uow import SessionDep

router = APIRouter(tags=["visit mode"])

Setter = require_roles(Role.admin, Role.org_admin, Role.caregiver, Role.service)


class VisitModeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool
    staff_id: uuid.UUID | None = None
    visit_ref: str | None = Field(None, max_length=64, description="dispatch's visit id")


class VisitModeRead(BaseModel):
    elder_id: uuid.UUID
    active: bool
    since: datetime | None = None


@router.put(
    "/v1/elders/{elder_id}/visit-mode",
    response_model=VisitModeRead,
    summary="Caregiver checked in (active) or out: behaviour alerts pause meanwhile",
)
async def set_visit_mode(
    elder_id: uuid.UUID, body: VisitModeIn, session: SessionDep, principal: Principal = Setter
) -> VisitModeRead:
    await elders.get(session=session, principal=principal, elder_id=elder_id)
    if not body.active:
        await session.execute(delete(VisitMode).where(VisitMode.elder_id == elder_id))
        return VisitModeRead(elder_id=elder_id, active=False)
    since = datetime.now(UTC)
    staff = body.staff_id or (principal.staff if principal.role is Role.caregiver else None)
    await session.execute(
        insert(VisitMode)
        .values(
            elder_id=elder_id,
            since=since,
            staff_id=staff,
            visit_ref=body.visit_ref,
        )
        .on_conflict_do_update(
            index_elements=["elder_id"],
            set_={"since": since, "staff_id": staff, "visit_ref": body.visit_ref},
        )
    )
    return VisitModeRead(elder_id=elder_id, active=True, since=since)
