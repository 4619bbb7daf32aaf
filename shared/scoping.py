"""Who may see what — one rule, written once, called by every service.

A token's role and scope (``region`` prefix, ``org``, ``staff``, ``elder``) become a WHERE
clause. The registry calls these functions with its own ORM tables; the other services with
the published read model (``shared.readmodel``). Both are tables with the same column names,
so one function serves both, and a rule changed here changes everywhere.

Values travel as named bind parameters (``scope_region``, ``scope_org``, ``scope_elder``), so
``shared.fastread`` can compile a scoped statement once per *shape* of principal.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    FromClause,
    and_,
    bindparam,
    exists,
    false,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from shared import readmodel
from shared.auth import Principal, Role
from shared.errors import NotFound
from shared.i18n import T

OPEN_BED_STATUSES = ("applied", "active", "suspended")


def scope_shape(principal: Principal) -> tuple[Role, bool]:
    """Principals with the same shape share one compiled scope clause."""
    return principal.role, principal.region is not None


def scope_params(principal: Principal) -> dict[str, Any]:
    return {
        "scope_region": principal.region,
        "scope_org": principal.org,
        "scope_elder": principal.elder,
    }


def region_clause(elders: FromClause, prefix: BindParameter[str]) -> ColumnElement[bool]:
    # Region codes are digits only (validated in tokens and query params): no LIKE escaping.
    return or_(
        elders.c.hukou_region.startswith(prefix), elders.c.residence_region.startswith(prefix)
    )


def elder_scope(
    principal: Principal,
    elders: FromClause = readmodel.elders,
    beds: FromClause = readmodel.beds,
) -> ColumnElement[bool]:
    """The elders ``principal`` may see.

    Region roles: hukou or residence under their prefix. Orgs: elders with a bed of theirs
    that is not terminated, and elders they registered until such a bed has ended (their
    access ends with their service). Family: their own elder. Services: everyone. Gateways: nobody.
    """
    role, has_region = scope_shape(principal)
    values = scope_params(principal)
    if role in (Role.admin, Role.street, Role.community):
        if not has_region:
            return true()
        return region_clause(elders, bindparam("scope_region", values["scope_region"]))
    if role in (Role.org_admin, Role.caregiver):
        org = bindparam("scope_org", values["scope_org"])
        bed_of_org = and_(beds.c.elder_id == elders.c.id, beds.c.org_id == org)
        return or_(
            # while it serves the elder
            exists().where(bed_of_org, beds.c.status != "terminated"),
            # an elder it registered, until its service to them has ended (a bed of its own
            # that began and was terminated; an application withdrawn unstarted is no service)
            and_(
                elders.c.registered_by_org == org,
                ~exists().where(
                    bed_of_org, beds.c.status == "terminated", beds.c.started_on.is_not(None)
                ),
            ),
        )
    if role is Role.service:
        return true()
    if role is Role.family:
        return elders.c.id == bindparam("scope_elder", values["scope_elder"])
    return false()


def prefixes_nest(column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """Rows keyed by a region prefix (a run, a callback sample) that lies inside ``prefix``
    or contains it: what a region officer oversees, and what overlaps a region."""
    return column.startswith(prefix, autoescape=True) | literal(prefix).startswith(column)


def sees_everything(principal: Principal) -> bool:
    """Services and unscoped admins: rows about no elder (an unknown gateway) are theirs."""
    return principal.role is Role.service or (
        principal.role is Role.admin and principal.region is None
    )


def by_elder(principal: Principal, elder_id: ColumnElement) -> ColumnElement[bool]:
    """Rows that name an elder (alerts, events, visits, entitlements): visible to whoever
    may see the elder. Rows about no elder (a possible emergency from a gateway nobody
    registered) go to every civil-affairs admin too: some duty desk must see them, and a
    district's desk is a region-scoped admin."""
    if sees_everything(principal):
        return true()
    e = readmodel.elders
    visible = elder_id.in_(select(e.c.id).where(elder_scope(principal, e, readmodel.beds)))
    if principal.role is Role.admin:
        return or_(visible, elder_id.is_(None))
    return visible


def bed_scope(
    principal: Principal,
    beds: FromClause = readmodel.beds,
    elders: FromClause = readmodel.elders,
) -> ColumnElement[bool]:
    """Orgs see their own beds; region roles and family the beds of elders they see."""
    role = principal.role
    if role in (Role.org_admin, Role.caregiver):
        return beds.c.org_id == principal.org
    if role in (Role.admin, Role.street, Role.community, Role.family):
        return beds.c.elder_id.in_(select(elders.c.id).where(elder_scope(principal, elders)))
    if role is Role.service:
        return true()
    return false()


def org_scope(principal: Principal, orgs: FromClause = readmodel.orgs) -> ColumnElement[bool]:
    """An org sees itself; region roles the orgs registered under their prefix."""
    role = principal.role
    if role in (Role.admin, Role.street, Role.community):
        return (
            orgs.c.region.startswith(principal.region, autoescape=True)
            if principal.region
            else true()
        )
    if role in (Role.org_admin, Role.caregiver):
        return orgs.c.id == principal.org
    if role is Role.service:
        return true()
    return false()


def device_scope(
    principal: Principal, devices: FromClause = readmodel.devices
) -> ColumnElement[bool]:
    """Devices are seen by whoever sees their elder; never by family members or gateways."""
    if principal.role is Role.service:
        return true()
    if principal.role in (Role.gateway, Role.family):
        return false()
    return by_elder(principal, devices.c.elder_id)


async def require_elder(session: AsyncSession, principal: Principal, elder_id: uuid.UUID) -> None:
    """404 unless ``principal`` may see the elder (existence is not leaked)."""
    e = readmodel.elders
    found = await session.scalar(select(e.c.id).where(e.c.id == elder_id, elder_scope(principal)))
    if found is None:
        raise NotFound(T(f"未找到老人 {elder_id}", f"elder {elder_id} not found"))


async def require_device(session: AsyncSession, principal: Principal, device_id: str) -> Any:
    """The device's read-model row; 404 unless ``principal`` may see it."""
    d = readmodel.devices
    row = (
        await session.execute(select(d).where(d.c.device_id == device_id, device_scope(principal)))
    ).first()
    if row is None:
        raise NotFound(T(f"未找到设备 {device_id}", f"device {device_id} not found"))
    return row


def staff_scope(principal: Principal, staff: FromClause = readmodel.staff) -> ColumnElement[bool]:
    """Staff members (and what is theirs: a caregiver's tasks, offers, route): a caregiver
    sees only itself; an org admin its org's staff; region roles the staff of orgs registered
    under their prefix; services everyone; family members and gateways nobody."""
    role = principal.role
    if role is Role.caregiver:
        return staff.c.id == bindparam("scope_staff", principal.staff)
    if role is Role.org_admin:
        return staff.c.org_id == bindparam("scope_org", principal.org)
    if role in (Role.admin, Role.street, Role.community):
        o = readmodel.orgs
        return staff.c.org_id.in_(select(o.c.id).where(org_scope(principal, o)))
    if role is Role.service:
        return true()
    return false()
