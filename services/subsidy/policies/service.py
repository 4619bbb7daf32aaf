"""Policy versions: the bundled YAML loaded at start-up, admin-posted versions, and which
version is in force for a month (``in_force``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.subsidy.policies.document import PolicyDoc, parse_document
from services.subsidy.policies.engine import month_bounds
from services.subsidy.policies.models import PolicyDocument, PolicyVersion
from services.subsidy.policies.predicates import PolicyInvalid
from shared.auth import Principal
from shared.errors import Conflict, NotFound, Problem, Unprocessable
from shared.i18n import T
from shared.policy import policy_files

_compiled: dict[str, PolicyDoc] = {}


def compiled(raw: Mapping[str, Any]) -> PolicyDoc:
    """The parsed document, cached by content hash (compiling predicates costs more than a
    whole elder's evaluation)."""
    from services.subsidy.policies.document import document_hash

    h = document_hash(raw)
    doc = _compiled.get(h)
    if doc is None:
        doc = _compiled[h] = parse_document(raw)
    return doc


def to_json(raw: Mapping[str, Any]) -> dict[str, Any]:
    """YAML dates as ISO strings for JSONB (``parse_json`` reads them back)."""
    import orjson

    return orjson.loads(orjson.dumps(raw, default=str))


_DATE_KEYS = {"valid_from", "valid_to", "from"}


def parse_json(value: Any, key: str | None = None) -> Any:
    """A document back from JSON(B): ISO dates where policy documents have dates."""
    if isinstance(value, dict):
        return {k: parse_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [parse_json(v, key) for v in value]
    if key in _DATE_KEYS and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def invalid(exc: PolicyInvalid) -> Problem:
    return Unprocessable(
        T(
            "策略文档无效：" + "；".join(f"{f}：{m.zh}" for f, m in exc.errors[:3]),
            "the policy document is not valid: "
            + "; ".join(f"{f}: {m.en}" for f, m in exc.errors[:3]),
        ),
        slug="policy-invalid",
        errors=[(f, m) for f, m in exc.errors],
    )


async def _store(session: AsyncSession, raw: Mapping[str, Any], doc: PolicyDoc) -> None:
    await session.execute(
        insert(PolicyDocument)
        .values(hash=doc.hash, document=to_json(raw))
        .on_conflict_do_nothing(index_elements=["hash"])
    )


def _version_columns(doc: PolicyDoc, source: str, created_by: str) -> dict[str, Any]:
    """A version's row, from its document (bundled at start-up or posted through the API)."""
    return {
        "code": doc.code,
        "version": doc.version,
        "title": doc.title,
        "status": doc.status,
        "regions": list(doc.regions),
        "valid_from": doc.valid_from,
        "valid_to": doc.valid_to,
        "hash": doc.hash,
        "source": source,
        "created_by": created_by,
        "activated_at": datetime.now(UTC) if doc.status == "active" else None,
    }


async def sync_bundled(session: AsyncSession) -> int:
    """Load ``shared/policies/*.yaml`` (validated; a bundled document that does not validate
    stops the service) into ``subsidy.policy_versions``. Bundled files are authoritative for
    their own versions; versions posted through the API are never touched."""
    n = 0
    for path in policy_files():
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc = parse_document(raw)
        await _store(session, raw, doc)
        stmt = insert(PolicyVersion).values(**_version_columns(doc, "bundled", "bundled"))
        stmt = stmt.on_conflict_do_update(
            index_elements=["code", "version"],
            set_={
                "title": stmt.excluded.title,
                "status": stmt.excluded.status,
                "regions": stmt.excluded.regions,
                "valid_from": stmt.excluded.valid_from,
                "valid_to": stmt.excluded.valid_to,
                "hash": stmt.excluded.hash,
            },
            where=PolicyVersion.source == "bundled",
        )
        await session.execute(stmt)
        n += 1
    return n


@dataclass(frozen=True)
class Version:
    row: PolicyVersion
    doc: PolicyDoc


async def document(session: AsyncSession, hash_: str) -> PolicyDoc:
    cached = _compiled.get(hash_)
    if cached is not None:
        return cached
    raw = await session.scalar(select(PolicyDocument.document).where(PolicyDocument.hash == hash_))
    if raw is None:
        raise NotFound(T(f"未找到策略文档 {hash_}", f"policy document {hash_} not found"))
    return compiled(parse_json(raw))


async def all_versions(session: AsyncSession) -> list[PolicyVersion]:
    return list(
        await session.scalars(
            select(PolicyVersion).order_by(PolicyVersion.code, PolicyVersion.version)
        )
    )


async def get_version(session: AsyncSession, code: str, version: int | None = None) -> Version:
    stmt = select(PolicyVersion).where(PolicyVersion.code == code)
    if version is not None:
        stmt = stmt.where(PolicyVersion.version == version)
    row = await session.scalar(stmt.order_by(PolicyVersion.version.desc()).limit(1))
    if row is None:
        raise NotFound(T(f"未找到策略 {code}", f"policy {code} not found"))
    return Version(row, await document(session, row.hash))


def pick_in_force(rows: list[PolicyVersion], month: date) -> PolicyVersion | None:
    """Of one code's versions: the one in force on the month's first day, else the first
    that starts within the month. A later version supersedes by its effective date."""
    first, last, _ = month_bounds(month)
    started = [
        r for r in rows if r.valid_from <= first and (r.valid_to is None or r.valid_to >= first)
    ]
    if started:
        return max(started, key=lambda r: (r.valid_from, r.version))
    later = [r for r in rows if first < r.valid_from <= last]
    return min(later, key=lambda r: (r.valid_from, r.version)) if later else None


async def in_force(
    session: AsyncSession,
    *,
    month: date,
    code: str | None = None,
    region: str | None = None,
    include_drafts: bool = False,
) -> list[Version]:
    """The version of each policy in force for ``month`` (active versions only, unless
    ``include_drafts``), covering ``region`` when given; most specific region first."""
    statuses = ("active", "draft") if include_drafts else ("active",)
    stmt = select(PolicyVersion).where(PolicyVersion.status.in_(statuses))
    if code is not None:
        stmt = stmt.where(PolicyVersion.code == code)
    by_code: dict[str, list[PolicyVersion]] = {}
    for row in await session.scalars(stmt):
        by_code.setdefault(row.code, []).append(row)
    out: list[tuple[int, Version]] = []
    for rows in by_code.values():
        actives = [r for r in rows if r.status == "active"]
        row = pick_in_force(actives, month) or (
            pick_in_force(rows, month) if include_drafts else None
        )
        if row is None:
            continue
        spec = max((len(p) for p in row.regions if region and region.startswith(p)), default=-1)
        if region is not None and spec < 0:
            continue
        out.append((spec, Version(row, await document(session, row.hash))))
    out.sort(key=lambda t: (-t[0], t[1].row.code))
    return [v for _, v in out]


async def create(
    session: AsyncSession, *, principal: Principal, raw: dict[str, Any]
) -> PolicyVersion:
    """A new version posted by an admin (validated; drafts may keep blanks)."""
    raw = parse_json(raw)
    try:
        doc = parse_document(raw)
    except PolicyInvalid as exc:
        raise invalid(exc) from None
    if principal.region and not all(r.startswith(principal.region) for r in doc.regions):
        raise Unprocessable(
            T("策略区域超出您的管辖范围", "the policy's regions are outside your scope"),
            errors=[
                (
                    "regions",
                    T(f"应在 {principal.region} 之内", f"must be within {principal.region}"),
                )
            ],
        )
    exists = await session.scalar(
        select(PolicyVersion.id).where(
            PolicyVersion.code == doc.code, PolicyVersion.version == doc.version
        )
    )
    if exists is not None:
        raise Conflict(
            T(
                f"策略 {doc.code} 第 {doc.version} 版已存在：请发布新版本",
                f"{doc.code} v{doc.version} exists; post a new version",
            ),
            slug="policy-version-exists",
        )
    await _store(session, raw, doc)
    row = PolicyVersion(**_version_columns(doc, "api", principal.sub))
    session.add(row)
    await session.flush()
    _compiled[doc.hash] = doc
    return row


async def activate(session: AsyncSession, *, code: str, version: int) -> PolicyVersion:
    """Turn a draft into the version in force from its ``valid_from``. Refused, naming the
    rule and field, while any amount or the region is still blank."""
    v = await get_version(session, code, version)
    if v.row.status == "active":
        return v.row
    if v.doc.blanks:
        raise Unprocessable(
            T(
                f"草案 {code} v{version} 仍有空缺，不能生效",
                f"draft {code} v{version} still has blanks",
            ),
            slug="policy-incomplete",
            errors=[(f, m) for f, m in v.doc.blanks],
        )
    v.row.status = "active"
    v.row.activated_at = datetime.now(UTC)
    await session.flush()
    return v.row
