"""Alerts for people: scoped reads and the human steps of the lifecycle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.telemetry.alerts import lifecycle
from services.telemetry.alerts.models import ACTIVE, Alert, AlertLog
from services.telemetry.alerts.schemas import AlertLogRead, AlertRead
from shared import scoping
from shared.auth import Principal
from shared.errors import Conflict, NotFound
from shared.i18n import T
from shared.pagination import Page, paginate


def scope_clause(principal: Principal) -> ColumnElement[bool]:
    """Visible to whoever may see the elder; alerts about no elder (an unknown gateway) only
    to unscoped admins and services. One rule for alerts and their log (the SSE feed)."""
    return scoping.by_elder(principal, Alert.elder_id)


def readable_statement(principal: Principal) -> Select[tuple[Alert]]:
    return select(Alert).where(scope_clause(principal))


async def get(*, session: AsyncSession, principal: Principal, alert_id: uuid.UUID) -> Alert:
    alert = await session.scalar(readable_statement(principal).where(Alert.id == alert_id))
    if alert is None:
        raise NotFound(T(f"未找到告警 {alert_id}", f"alert {alert_id} not found"))
    return alert


@dataclass(frozen=True)
class AlertFilters:
    status: str | None = None
    active: bool | None = None
    severity: str | None = None
    kind: str | None = None
    elder_id: uuid.UUID | None = None
    since: datetime | None = None


async def list_page(
    *,
    session: AsyncSession,
    principal: Principal,
    filters: AlertFilters,
    cursor: str | None,
    limit: int,
) -> Page[AlertRead]:
    stmt = readable_statement(principal)
    if filters.status:
        stmt = stmt.where(Alert.status == filters.status)
    if filters.active is not None:
        stmt = stmt.where(
            Alert.status.in_(ACTIVE) if filters.active else Alert.status.not_in(ACTIVE)
        )
    if filters.severity:
        stmt = stmt.where(Alert.severity == filters.severity)
    if filters.kind:
        stmt = stmt.where(Alert.kind == filters.kind)
    if filters.elder_id:
        stmt = stmt.where(Alert.elder_id == filters.elder_id)
    if filters.since:
        stmt = stmt.where(Alert.raised_at >= filters.since)
    return await paginate(
        session,
        stmt,
        key=Alert.id,
        cursor=cursor,
        limit=limit,
        descending=True,  # newest first
        read=AlertRead.model_validate,
    )


async def _raw(session: AsyncSession) -> asyncpg.Connection:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection  # the same transaction as the session


async def acknowledge(
    *, session: AsyncSession, principal: Principal, alert: Alert, note: str | None
) -> Alert:
    if not await lifecycle.acknowledge(
        await _raw(session), alert.id, actor=principal.sub, note=note
    ):
        await session.refresh(alert)
        raise Conflict(
            T(
                f"{alert.status} 状态的告警不能确认",
                f"a {alert.status} alert cannot be acknowledged",
            ),
            status_now=alert.status,
        )
    await session.refresh(alert)
    return alert


async def resolve(
    *, session: AsyncSession, principal: Principal, alert: Alert, outcome: str, note: str | None
) -> Alert:
    conn = await _raw(session)
    if not await lifecycle.resolve(conn, alert.id, outcome=outcome, actor=principal.sub, note=note):
        await session.refresh(alert)
        raise Conflict(
            T(f"告警已关闭（{alert.status}）", f"a {alert.status} alert is already closed"),
            status_now=alert.status,
        )
    await session.refresh(alert)
    return alert


async def history(
    *, session: AsyncSession, alert: Alert, cursor: str | None, limit: int
) -> Page[AlertLogRead]:
    """The alert's steps in the order they happened (one alert's steps are written one
    after another, so ``seq`` orders them)."""
    return await paginate(
        session,
        select(AlertLog).where(AlertLog.alert_id == alert.id),
        key=AlertLog.seq,
        cursor=cursor,
        limit=limit,
        read=AlertLogRead.model_validate,
    )


def stream_statement(principal: Principal, after: int, limit: int = 200) -> Select:
    """Alert log entries after position ``after`` that ``principal`` may see (the SSE
    feed), in commit order — see stream.py."""
    return (
        select(AlertLog)
        .where(AlertLog.pos > after, scoping.by_elder(principal, AlertLog.elder_id))
        .order_by(AlertLog.pos)
        .limit(limit)
    )
