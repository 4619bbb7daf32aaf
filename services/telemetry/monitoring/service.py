"""Per-elder monitoring settings and VISIT mode: what the rules read besides the readings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.telemetry.monitoring.models import ElderSettings, VisitMode
from services.telemetry.monitoring.schemas import MonitoringSettings, VisitModeRead
from shared import readmodel, visits_readmodel
from shared.auth import Principal, Role
from shared.errors import Forbidden
from shared.i18n import T


async def get_settings(*, session: AsyncSession, elder_id: uuid.UUID) -> MonitoringSettings:
    row = await session.scalar(select(ElderSettings).where(ElderSettings.elder_id == elder_id))
    if row is None:
        return MonitoringSettings()
    return MonitoringSettings(thresholds=row.thresholds, schedule=row.schedule)


async def put_settings(
    *, session: AsyncSession, elder_id: uuid.UUID, settings_in: MonitoringSettings
) -> MonitoringSettings:
    thresholds = {m: o.model_dump(exclude_none=True) for m, o in settings_in.thresholds.items()}
    schedule = settings_in.schedule.model_dump(exclude_none=True)
    await session.execute(
        insert(ElderSettings)
        .values(elder_id=elder_id, thresholds=thresholds, schedule=schedule)
        .on_conflict_do_update(
            index_elements=["elder_id"], set_={"thresholds": thresholds, "schedule": schedule}
        )
    )
    return settings_in


async def visit_staff(
    *,
    session: AsyncSession,
    principal: Principal,
    elder_id: uuid.UUID,
    staff_id: uuid.UUID | None,
    active: bool,
) -> uuid.UUID | None:
    """Who may switch VISIT mode (it pauses behaviour alerts), and for which staff id.

    A caregiver may switch it on only for themselves (a ``staff_id`` of someone else is
    403), while an active member of their org's staff, for an elder with an *active* bed of
    that org and a dispatch visit of theirs checked in there now — and end only their own.
    An org admin may name only staff of its org. Admins and services (dispatch, which sets
    it at check-in itself) are trusted.
    Returns the staff id to record. The caller has already checked the elder is in scope.
    """
    if principal.role is Role.caregiver:
        if staff_id is not None and staff_id != principal.staff:
            raise Forbidden(
                T(
                    "只能为本人开启或结束上门模式",
                    "a caregiver switches visit mode only for themselves",
                )
            )
        if not await _is_active_staff(session, principal.staff, principal.org):
            raise Forbidden(T("不是本机构在职人员", "not active staff of this organisation"))
        if not await _has_active_bed(session, elder_id, principal.org):
            raise Forbidden(
                T(
                    "该老人没有本机构的在服务床位",
                    "the elder has no active home care bed of your organisation",
                )
            )
        if active and not await _checked_in(session, elder_id, principal.staff):
            raise Forbidden(
                T(
                    "您此刻没有在该老人家中签到的上门服务",
                    "you have no visit checked in at this elder's home now",
                )
            )
        if not active:
            current = await session.scalar(
                select(VisitMode.staff_id).where(VisitMode.elder_id == elder_id)
            )
            if current is not None and current != principal.staff:
                raise Forbidden(
                    T("只能结束本人的上门模式", "a caregiver ends only their own visit")
                )
        return principal.staff
    if (
        principal.role is Role.org_admin
        and staff_id is not None
        and not await _is_active_staff(session, staff_id, principal.org)
    ):
        raise Forbidden(T("不是本机构在职人员", "not active staff of this organisation"))
    return staff_id


async def _checked_in(
    session: AsyncSession, elder_id: uuid.UUID, staff_id: uuid.UUID | None
) -> bool:
    v = visits_readmodel.visits
    return bool(
        await session.scalar(
            select(
                exists().where(
                    v.c.elder_id == elder_id, v.c.staff_id == staff_id, v.c.status == "checked_in"
                )
            )
        )
    )


async def _is_active_staff(
    session: AsyncSession, staff_id: uuid.UUID | None, org_id: uuid.UUID | None
) -> bool:
    s = readmodel.staff
    return bool(
        await session.scalar(
            select(exists().where(s.c.id == staff_id, s.c.org_id == org_id, s.c.active.is_(True)))
        )
    )


async def _has_active_bed(
    session: AsyncSession, elder_id: uuid.UUID, org_id: uuid.UUID | None
) -> bool:
    b = readmodel.beds
    return bool(
        await session.scalar(
            select(
                exists().where(
                    b.c.elder_id == elder_id, b.c.org_id == org_id, b.c.status == "active"
                )
            )
        )
    )


async def start_visit(
    *,
    session: AsyncSession,
    elder_id: uuid.UUID,
    staff_id: uuid.UUID | None,
    visit_ref: str | None,
) -> VisitModeRead:
    since = datetime.now(UTC)
    values = {"since": since, "staff_id": staff_id, "visit_ref": visit_ref}
    await session.execute(
        insert(VisitMode)
        .values(elder_id=elder_id, **values)
        .on_conflict_do_update(index_elements=["elder_id"], set_=values)
    )
    return VisitModeRead(elder_id=elder_id, active=True, since=since)


async def end_visit(*, session: AsyncSession, elder_id: uuid.UUID) -> VisitModeRead:
    await session.execute(delete(VisitMode).where(VisitMode.elder_id == elder_id))
    return VisitModeRead(elder_id=elder_id, active=False)
