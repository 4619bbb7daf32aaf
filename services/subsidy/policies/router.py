from __future__ import annotations

from fastapi import APIRouter

from services.subsidy.common import Code
from services.subsidy.policies import service
from services.subsidy.policies.models import PolicyVersion
from services.subsidy.policies.schemas import (
    PolicyCreate,
    PolicyDocumentRead,
    PolicyRead,
    RuleSummary,
)
from shared.auth import Principal, Role, ScopedReader, require_roles
from shared.errors import FieldError, problem_doc
from shared.i18n import T, text
from shared.pagination import Cursor, Limit, Page, paginate
from shared.uow import SessionDep

router = APIRouter(prefix="/v1/policies", tags=["policies"])
Admin = require_roles(Role.admin)


async def _read(session, row: PolicyVersion, cls=PolicyRead):
    doc = await service.document(session, row.hash)
    extra = {"document": service.to_json(doc.raw)} if cls is PolicyDocumentRead else {}
    return cls.model_validate(
        {
            **{k: getattr(row, k) for k in PolicyRead.model_fields if hasattr(row, k)},
            "title": text(T(doc.title, doc.title_en)),
            "rules": [
                RuleSummary(
                    id=r.id,
                    name=text(r.name) or r.id,
                    kind=r.kind,
                    need=r.need,
                    pay_to=r.pay_to,
                    fund=r.fund,
                    reference=r.reference,
                )
                for r in doc.rules
            ],
            "blanks": [FieldError(field=f, message=text(m) or "") for f, m in doc.blanks],
            **extra,
        }
    )


@router.get("", response_model=Page[PolicyRead], summary="Every policy version, drafts included")
async def list_policies(
    session: SessionDep,
    principal: Principal = ScopedReader,
    code: Code | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[PolicyRead]:
    from sqlalchemy import select

    stmt = select(PolicyVersion)
    if code:
        stmt = stmt.where(PolicyVersion.code == code)
    page = await paginate(session, stmt, key=PolicyVersion.id, cursor=cursor, limit=limit)
    return Page[PolicyRead](
        items=[await _read(session, r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/{code}/versions/{version}",
    response_model=PolicyDocumentRead,
    summary="One version with its whole document",
)
async def get_policy_version(
    code: Code, version: int, session: SessionDep, principal: Principal = ScopedReader
) -> PolicyDocumentRead:
    v = await service.get_version(session, code, version)
    return await _read(session, v.row, PolicyDocumentRead)


@router.post(
    "",
    status_code=201,
    response_model=PolicyRead,
    summary="Post a new version (validated; a draft may keep blank amounts)",
    responses={
        409: problem_doc("that code and version exist"),
        422: problem_doc("the document does not validate: `errors` names each rule and field"),
    },
)
async def create_policy(
    body: PolicyCreate, session: SessionDep, principal: Principal = Admin
) -> PolicyRead:
    row = await service.create(session, principal=principal, raw=body.model_dump())
    return await _read(session, row)


@router.post(
    "/{code}/versions/{version}/activate",
    response_model=PolicyRead,
    summary="Activate a draft; refused (422, naming rule and field) while blanks remain",
    responses={422: problem_doc("the draft still has blank amounts or no region")},
)
async def activate_policy(
    code: Code, version: int, session: SessionDep, principal: Principal = Admin
) -> PolicyRead:
    row = await service.activate(session, code=code, version=version)
    return await _read(session, row)
