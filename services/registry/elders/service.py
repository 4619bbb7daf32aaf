"""Elders: create, read (scoped), list, update, reveal PII (audited)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import orjson
from sqlalchemy import ColumnElement, Select, bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.beds.models import Bed
from services.registry.categories.models import Category
from services.registry.elders.models import Elder
from services.registry.elders.moves import service as moves
from services.registry.elders.moves.schemas import MoveCreate
from services.registry.elders.schemas import ElderCreate, ElderRead, ElderUpdate
from services.registry.orgs import service as orgs
from shared import audit, clock, fastread, scoping
from shared.auth import ORG_ROLES, Principal, Role
from shared.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
    data_problem,
    is_data_error,
)
from shared.i18n import T
from shared.pagination import Page, paginate
from shared.pii import PiiCipher, age_on, mask_id_number, mask_phone, parse_id_number

DUPLICATE_SLUG = "id-number-registered"


def scope_clause(principal: Principal) -> ColumnElement[bool]:
    """The elders ``principal`` may see: the platform's one rule (``shared.scoping``) on the
    registry's own tables."""
    return scoping.elder_scope(principal, Elder.__table__, Bed.__table__)


def readable_statement(principal: Principal) -> Select[tuple[Elder]]:
    return select(Elder).where(scope_clause(principal))


def _by_id_for_shape(shape: tuple[Role, bool]) -> Select:
    role, has_region = shape
    example = Principal(
        sub="-",
        role=role,
        region="0" if has_region else None,
        org=uuid.UUID(int=0),
        staff=uuid.UUID(int=0),
        elder=uuid.UUID(int=0),
    )
    return select(Elder.__table__).where(scope_clause(example), Elder.id == bindparam("elder_id"))


BY_ID = fastread.Query(_by_id_for_shape)


async def get_row(
    *, pool: asyncpg.Pool, principal: Principal, elder_id: uuid.UUID
) -> asyncpg.Record:
    """The hot read: one elder by id, scoped, straight on asyncpg (see ``shared.fastread``)."""
    try:
        row = await BY_ID.fetchrow(
            pool,
            scoping.scope_shape(principal),
            {**scoping.scope_params(principal), "elder_id": elder_id},
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        if is_data_error(exc):  # a value PostgreSQL refused: the request's fault
            raise data_problem() from exc
        raise ServiceUnavailable() from exc
    if row is None:
        raise NotFound(not_found(elder_id))
    return row


def not_found(elder_id: uuid.UUID) -> T:
    return T(f"未找到老人 {elder_id}", f"elder {elder_id} not found")


async def get(*, session: AsyncSession, principal: Principal, elder_id: uuid.UUID) -> Elder:
    elder = await session.scalar(readable_statement(principal).where(Elder.id == elder_id))
    if elder is None:
        raise NotFound(not_found(elder_id))
    return elder


async def _check_area(session: AsyncSession, principal: Principal, elder_in: ElderCreate) -> None:
    """Region roles register elders under their prefix; an org only inside its service area
    (its registered region and its stations' regions, ``orgs.service_area``) — by hukou or
    residence, the same two codes that scope every read."""
    codes = (elder_in.hukou_region, elder_in.residence_region or elder_in.hukou_region)
    if principal.role in ORG_ROLES:
        assert principal.org is not None
        area = await orgs.service_area(session=session, org_id=principal.org)
        if not any(code.startswith(prefix) for code in codes for prefix in area):
            served = "、".join(area) or "—"
            raise Forbidden(
                T(
                    f"地区 {elder_in.hukou_region} 不在本机构服务区域（{served}）内",
                    f"region {elder_in.hukou_region} is outside your service area "
                    f"({', '.join(area) or 'none'})",
                )
            )
    elif principal.region is not None and not any(principal.in_region(c) for c in codes):
        raise Forbidden(
            T(
                f"地区 {elder_in.hukou_region} 不在你的管辖范围 {principal.region} 内",
                f"region {elder_in.hukou_region} is outside your region {principal.region}",
            )
        )


def duplicate(existing: uuid.UUID | None) -> Conflict:
    """The 409 for an ID number already registered. Only a caller who may read that elder
    learns its id; to anyone else the answer is the same fixed document — no id, no region,
    no name, nothing about who registered it (see the route's description)."""
    extra = {"existing_id": str(existing)} if existing is not None else {}
    return Conflict(
        T(
            "该身份证号已登记。如需为此老人服务，请联系老人户籍或居住地的民政部门",
            "an elder with this ID number is already registered; to serve this elder, ask the "
            "civil-affairs office of the elder's hukou or residence",
        ),
        slug=DUPLICATE_SLUG,
        title=T("身份证号已登记", "ID number already registered"),
        **extra,
    )


async def create(
    *, session: AsyncSession, principal: Principal, cipher: PiiCipher, elder_in: ElderCreate
) -> Elder:
    await _check_area(session, principal, elder_in)
    card = parse_id_number(elder_in.id_number)
    lookup = cipher.lookup_hash(card.number)
    existing = await session.scalar(select(Elder.id).where(Elder.id_number_hash == lookup))
    if existing is not None:
        readable = await session.scalar(
            select(Elder.id).where(Elder.id == existing, scope_clause(principal))
        )
        raise duplicate(existing if readable else None)
    elder = Elder(
        id_number_enc=cipher.encrypt(card.number, context=b"elder.id_number"),
        id_number_hash=lookup,
        id_number_masked=mask_id_number(card.number),
        name=elder_in.name,
        birth_date=card.birth_date,
        gender=card.gender,
        phone_enc=cipher.encrypt(elder_in.phone, context=b"elder.phone")
        if elder_in.phone
        else None,
        phone_masked=mask_phone(elder_in.phone) if elder_in.phone else None,
        hukou_region=elder_in.hukou_region,
        residence_region=elder_in.residence_region or elder_in.hukou_region,
        address=elder_in.address,
        lat=elder_in.lat,
        lon=elder_in.lon,
        zone=elder_in.zone,
        living_arrangement=elder_in.living_arrangement,
        lives_at_home=elder_in.lives_at_home,
        registered_by_org=principal.org if principal.role is Role.org_admin else None,
    )
    session.add(elder)
    await session.flush()
    session.add(moves.registered(elder, recorded_by=principal.sub))
    await session.flush()
    return elder


async def update(
    *,
    session: AsyncSession,
    principal: Principal,
    cipher: PiiCipher,
    elder: Elder,
    elder_in: ElderUpdate,
) -> Elder:
    changes = elder_in.model_dump(exclude_unset=True)
    moved_to = changes.pop("residence_region", None)
    if moved_to and moved_to != elder.residence_region:
        # A move changes who is responsible and which local policy applies: it is a dated
        # row of the residence history (from today), with that history's rule of who may
        # record it, and audited there.
        await moves.record(
            session=session,
            principal=principal,
            elder=elder,
            move_in=MoveCreate(residence_region=moved_to, moved_on=clock.today()),
            today=clock.today(),
            same_day="replace",
        )
    if "phone" in changes:
        phone = changes.pop("phone")
        elder.phone_enc = cipher.encrypt(phone, context=b"elder.phone") if phone else None
        elder.phone_masked = mask_phone(phone) if phone else None
    for name, value in changes.items():
        if value is None and name not in {"lat", "lon", "deceased_on"}:
            continue
        setattr(elder, name, value)
    if (elder.lat is None) != (elder.lon is None):
        raise Unprocessable(
            T("lat 与 lon 须同时设置", "lat and lon must be set together"),
            errors=[("lat", T("须与 lon 同时设置", "set with lon"))],
        )
    await session.flush()
    return elder


@dataclass(frozen=True)
class ElderFilters:
    region: str | None = None
    category: str | None = None
    level: int | None = None
    min_level: int | None = None
    org: uuid.UUID | None = None
    zone: str | None = None
    living_arrangement: str | None = None


async def list_page(
    *,
    session: AsyncSession,
    principal: Principal,
    filters: ElderFilters,
    cursor: str | None,
    limit: int,
    today: date,
) -> Page[Elder]:
    stmt = readable_statement(principal)
    if filters.region:
        stmt = stmt.where(
            scoping.region_clause(Elder.__table__, bindparam("filter_region", filters.region))
        )
    if filters.zone:
        stmt = stmt.where(Elder.zone == filters.zone)
    if filters.living_arrangement:
        stmt = stmt.where(Elder.living_arrangement == filters.living_arrangement)
    if filters.level is not None:
        stmt = stmt.where(Elder.current_level == filters.level)
    if filters.min_level is not None:
        stmt = stmt.where(Elder.current_level >= filters.min_level)
    if filters.category:
        stmt = stmt.where(
            exists().where(
                Category.elder_id == Elder.id,
                Category.code == filters.category,
                Category.valid_from <= today,
                or_(Category.valid_to.is_(None), Category.valid_to >= today),
            )
        )
    if filters.org:
        stmt = stmt.where(
            exists().where(
                Bed.elder_id == Elder.id,
                Bed.org_id == filters.org,
                Bed.status.in_(("applied", "active", "suspended")),
            )
        )
    return await paginate(session, stmt, key=Elder.id, cursor=cursor, limit=limit)


READ_COLUMNS = (
    "id",
    "id_number_masked",
    "name",
    "birth_date",
    "gender",
    "phone_masked",
    "hukou_region",
    "residence_region",
    "address",
    "lat",
    "lon",
    "zone",
    "living_arrangement",
    "lives_at_home",
    "deceased_on",
    "current_level",
    "reassessment_due_on",
    "created_at",
)


def read_dict(source: Mapping[str, Any], today: date) -> dict[str, Any]:
    """The public (masked) view of an elder, from a database row or attribute values."""
    out = {name: source[name] for name in READ_COLUMNS}
    out["age"] = age_on(source["birth_date"], today)
    out["id_number"] = out["phone"] = None
    return out


def read_json(source: Mapping[str, Any], today: date) -> bytes:
    """The public view as JSON bytes (the hot read answers with them directly)."""
    return orjson.dumps(read_dict(source, today), default=str, option=orjson.OPT_UTC_Z)


def to_read(elder: Elder, today: date) -> ElderRead:
    return ElderRead.model_validate(
        read_dict({name: getattr(elder, name) for name in READ_COLUMNS}, today)
    )


async def reveal(
    *,
    session: AsyncSession,
    principal: Principal,
    cipher: PiiCipher,
    elder: Elder,
    read: ElderRead,
) -> ElderRead:
    """Fill in the clear PII the principal may see, and audit the read in the same transaction."""
    fields = []
    if principal.may_see("id_number"):
        read.id_number = cipher.decrypt(elder.id_number_enc, context=b"elder.id_number")
        fields.append("id_number")
    if principal.may_see("phone") and elder.phone_enc is not None:
        read.phone = cipher.decrypt(elder.phone_enc, context=b"elder.phone")
        fields.append("phone")
    if not fields:
        raise Forbidden(
            T(
                f"角色 {principal.role} 无权查看老人的个人信息明文",
                f"role {principal.role} may not see this elder's personal data in clear",
            )
        )
    await audit.record(
        session,
        service="registry",
        principal=principal,
        action="read_pii",
        resource_type="elder",
        resource_id=elder.id,
        fields=fields,
    )
    return read
