"""Applications (篇七 申请/审批), the smallest honest version: community workstation first
review within 10 working days (公示 included), street review within 5, district approval
within 10; every step recorded; a refusal states its reasons in writing. An approved
application is a fact rules read (``application_approved``)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.applications.models import Application
from services.subsidy.applications.schemas import (
    ApplicationCreate,
    ApplicationDecision,
    ApplicationRead,
)
from services.subsidy.policies import service as policies
from shared import calendar, clock, scoping
from shared.auth import Principal, Role
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from shared.i18n import T

# stage → (working days allowed, who decides, next stage)
STAGES: dict[str, tuple[int, frozenset[Role], str]] = {
    "community": (10, frozenset({Role.community, Role.admin}), "street"),
    "street": (5, frozenset({Role.street, Role.admin}), "district"),
    "district": (10, frozenset({Role.admin}), "done"),
}


async def create(
    *, session: AsyncSession, principal: Principal, body: ApplicationCreate
) -> Application:
    if principal.role is Role.family and principal.elder != body.elder_id:
        raise Forbidden(T("家属只能为本人的老人申请", "family members apply for their own elder"))
    await scoping.require_elder(session, principal, body.elder_id)
    version = await policies.get_version(session, body.policy_code)
    if body.basis and version.doc.checklists and body.basis not in version.doc.checklists:
        raise Unprocessable(
            T(f"未知的申请类别 {body.basis}", f"unknown basis {body.basis}"),
            errors=[
                (
                    "basis",
                    T(
                        f"可选：{', '.join(version.doc.checklists)}",
                        f"one of {', '.join(version.doc.checklists)}",
                    ),
                )
            ],
        )
    open_one = await session.scalar(
        select(Application.id).where(
            Application.elder_id == body.elder_id,
            Application.policy_code == body.policy_code,
            Application.status == "submitted",
        )
    )
    if open_one is not None:
        raise Conflict(
            T("已有审批中的申请", "an application is already under review"),
            application_id=str(open_one),
        )
    submitted = body.submitted_on or clock.today()
    app = Application(
        elder_id=body.elder_id,
        policy_code=body.policy_code,
        basis=body.basis,
        documents=body.documents,
        status="submitted",
        stage="community",
        submitted_on=submitted,
        due_on=await calendar.deadline(session, submitted, STAGES["community"][0]),
        reasons=[],
        history=[{"step": "submitted", "on": str(submitted), "by": principal.sub}],
        created_by=principal.sub,
    )
    session.add(app)
    await session.flush()
    return app


async def get(
    *, session: AsyncSession, principal: Principal, application_id: uuid.UUID
) -> Application:
    app = await session.get(Application, application_id)
    if app is None:
        raise NotFound(T(f"未找到申请 {application_id}", f"application {application_id} not found"))
    await scoping.require_elder(session, principal, app.elder_id)
    return app


async def decide(
    *,
    session: AsyncSession,
    principal: Principal,
    app: Application,
    body: ApplicationDecision,
    today: date,
) -> Application:
    if app.status != "submitted":
        raise Conflict(T("申请已办结", "the application is already decided"))
    _, roles, nxt = STAGES[app.stage]
    if principal.role not in roles:
        raise Forbidden(T(f"{app.stage} 阶段不由您审批", f"the {app.stage} review is not yours"))
    step = {
        "step": f"{app.stage}_{body.decision}",
        "on": str(today),
        "by": principal.sub,
        "late": today > app.due_on,
        "reasons": body.reasons,
        "note": body.note,
    }
    app.history = [*app.history, step]
    if body.decision == "refuse":
        app.status, app.stage, app.decided_on, app.reasons = "refused", "done", today, body.reasons
    elif nxt == "done":
        app.status, app.stage, app.decided_on = "approved", "done", today
    else:
        app.stage = nxt
        app.due_on = await calendar.deadline(session, today, STAGES[nxt][0])
    await session.flush()
    return app


async def to_read(session: AsyncSession, app: Application) -> ApplicationRead:
    read = ApplicationRead.model_validate(app)
    read.overdue = app.status == "submitted" and clock.today() > app.due_on
    if app.basis:
        version = await policies.get_version(session, app.policy_code)
        wanted = version.doc.checklists.get(app.basis, ())
        read.missing_documents = [d for d in wanted if d not in app.documents]
    return read
