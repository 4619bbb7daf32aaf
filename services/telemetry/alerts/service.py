"""Alerts for people: scoped reads and the human steps of the lifecycle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.elders import service as elders
from services.registry.elders.models import Elder
from services.telemetry.alerts import store
from services.telemetry.alerts.models import ACTIVE, Alert, AlertLog
from shared.auth import Principal, Role
from shared.errors import Conflict, NotFound
from shared.pagination import decode_cursor


def _by_elder(principal: Principal, elder_id: ColumnElement) -> ColumnElement[bool]:
    """Visible to whoever may see the elder; rows about no elder (an unknown gateway) only to
    unscoped admins and services. One rule for alerts and their log (the SSE feed)."""
    if principal.role is Role.service or (principal.role is Role.admin and not principal.region):
        return true()
    return elder_id.in_(select(Elder.id).where(elders.scope_clause(principal)))


def scope_clause(principal: Principal) -> ColumnElement[bool]:
    return _by_elder(principal, Alert.elder_id)


def readable_statement(principal: Principal) -> Select[tuple[Alert]]:
    return select(Alert).where(scope_clause(principal))


async def get(*, session: AsyncSession, principal: Principal, alert_id: uuid.UUID) -> Alert:
    alert = await session.scalar(readable_statement(principal).where(Alert.id == alert_id))
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
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
) -> list[Alert]:
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
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(Alert.id < after)  # newest first
    return list(await session.scalars(stmt.order_by(Alert.id.desc()).limit(limit + 1)))


async def _raw(session: AsyncSession) -> asyncpg.Connection:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection  # the same transaction as the session


async def acknowledge(
    *, session: AsyncSession, principal: Principal, alert: Alert, note: str | None
) -> Alert:
    """Somebody has it. An alert already handed to dispatch stays ``dispatched``."""
    conn = await _raw(session)
    # The condition lives in the UPDATE: two desks acknowledging at once, one wins.
    done = await conn.fetchval(
        "UPDATE telemetry.alerts SET acknowledged_at = now(), acknowledged_by = $2, "
        "status = CASE WHEN status = 'open' THEN 'acknowledged' ELSE status END, "
        "resolution_note = coalesce($3, resolution_note) "
        "WHERE id = $1 AND status IN ('open', 'dispatched') AND acknowledged_at IS NULL "
        "RETURNING id",
        alert.id,
        principal.sub,
        note,
    )
    if done is None:
        await session.refresh(alert)
        raise Conflict(f"a {alert.status} alert cannot be acknowledged", status_now=alert.status)
    await store.log(conn, alert.id, "acknowledged", principal.sub)
    await session.refresh(alert)
    return alert


async def resolve(
    *, session: AsyncSession, principal: Principal, alert: Alert, outcome: str, note: str | None
) -> Alert:
    conn = await _raw(session)
    done = await conn.fetchval(
        "UPDATE telemetry.alerts SET status = $2, resolved_at = now(), resolved_by = $3, "
        "resolution_note = coalesce($4, resolution_note), "
        "acknowledged_at = coalesce(acknowledged_at, now()), "
        "acknowledged_by = coalesce(acknowledged_by, $3) "
        "WHERE id = $1 AND status IN ('open', 'acknowledged', 'dispatched') RETURNING id",
        alert.id,
        outcome,
        principal.sub,
        note,
    )
    if done is None:
        await session.refresh(alert)
        raise Conflict(f"a {alert.status} alert is already closed", status_now=alert.status)
    await store.log(conn, alert.id, outcome, principal.sub)
    await session.refresh(alert)
    return alert


async def history(*, session: AsyncSession, alert: Alert) -> list[AlertLog]:
    return list(
        await session.scalars(
            select(AlertLog).where(AlertLog.alert_id == alert.id).order_by(AlertLog.seq)
        )
    )


def stream_statement(principal: Principal, after: int, limit: int = 200) -> Select:
    """Alert log entries after ``after`` that ``principal`` may see (the SSE feed)."""
    return (
        select(AlertLog)
        .where(AlertLog.seq > after, _by_elder(principal, AlertLog.elder_id))
        .order_by(AlertLog.seq)
        .limit(limit)
    )
