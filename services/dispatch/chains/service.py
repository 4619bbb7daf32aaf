"""An org's dispatch settings: its escalation chain and GPS tolerance (policy defaults
otherwise)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import policy as dispatch_policy
from services.dispatch.chains.models import OrgSettings
from services.dispatch.chains.schemas import Chain, OrgSettingsIn, OrgSettingsRead
from services.dispatch.dispatches import chain as chains
from shared import readmodel as rm
from shared import scoping
from shared.auth import Principal
from shared.errors import NotFound, Unprocessable
from shared.i18n import T


async def require_org(session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> None:
    o = rm.orgs
    if (
        await session.scalar(select(o.c.id).where(o.c.id == org_id, scoping.org_scope(principal)))
        is None
    ):
        raise NotFound(T(f"未找到机构 {org_id}", f"org {org_id} not found"))


async def get(*, session: AsyncSession, org_id: uuid.UUID) -> OrgSettingsRead:
    policy = dispatch_policy.load()
    row = await session.get(OrgSettings, org_id)
    chain = row.chain if row and row.chain else None
    return OrgSettingsRead(
        org_id=org_id,
        chain=Chain.model_validate(chain or policy.default_chain),
        chain_is_default=chain is None,
        gps_tolerance_m=row.gps_tolerance_m
        if row and row.gps_tolerance_m
        else policy.evv.gps_tolerance_m,
    )


async def put(
    *, session: AsyncSession, principal: Principal, org_id: uuid.UUID, body: OrgSettingsIn
) -> OrgSettingsRead:
    values = {}
    if body.chain is not None:
        chain = body.chain.model_dump()
        problems = chains.validate(chain)
        if problems:
            raise Unprocessable(
                T("升级链无效", "the chain is not valid"),
                errors=[(f"chain.{field}", text) for field, text in problems],
            )
        values["chain"] = chain
    if body.gps_tolerance_m is not None:
        values["gps_tolerance_m"] = body.gps_tolerance_m
    if values:
        await session.execute(
            insert(OrgSettings)
            .values(org_id=org_id, updated_by=principal.sub, **values)
            .on_conflict_do_update(
                index_elements=["org_id"], set_={**values, "updated_by": principal.sub}
            )
        )
    return await get(session=session, org_id=org_id)
