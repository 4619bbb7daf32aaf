"""Bearer-JWT authentication and the principal every request acts as.

Roles (DESIGN.md): admin (district civil affairs), street, community, org_admin, caregiver,
family, service (service-to-service), gateway (MQTT only). A token carries the scope its role
needs: ``region`` (an administrative-division code prefix) for admin/street/community,
``org`` for org_admin/caregiver, ``staff`` for caregivers, ``elder`` for family members.

401 means "who are you?" (missing, expired, forged token); 403 means "your role may not do
this"; a resource outside the caller's scope answers 404 so its existence does not leak.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from shared.config import Settings
from shared.errors import Forbidden, Unauthorized
from shared.i18n import T


class Role(StrEnum):
    admin = "admin"
    street = "street"
    community = "community"
    org_admin = "org_admin"
    caregiver = "caregiver"
    family = "family"
    service = "service"
    gateway = "gateway"


REGION_ROLES = {Role.admin, Role.street, Role.community}
ORG_ROLES = {Role.org_admin, Role.caregiver}

# Which roles may see which PII in clear (on request, audited). Everyone else gets masks.
PII_VISIBILITY: dict[Role, frozenset[str]] = {
    Role.admin: frozenset({"id_number", "phone"}),
    Role.street: frozenset({"id_number", "phone"}),
    Role.community: frozenset({"id_number", "phone"}),
    Role.org_admin: frozenset({"phone"}),
    Role.caregiver: frozenset({"phone"}),
    Role.service: frozenset({"phone"}),
    Role.family: frozenset(),
    Role.gateway: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    role: Role
    region: str | None = None
    org: uuid.UUID | None = None
    staff: uuid.UUID | None = None
    elder: uuid.UUID | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def may_see(self, pii_field: str) -> bool:
        return pii_field in PII_VISIBILITY.get(self.role, frozenset())

    def in_region(self, code: str | None) -> bool:
        """True when a region-scoped principal covers ``code`` (always, when unscoped)."""
        if self.region is None:
            return True
        return code is not None and code.startswith(self.region)


def _uuid_claim(payload: dict[str, Any], name: str) -> uuid.UUID | None:
    value = payload.get(name)
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise Unauthorized(
            T(f"令牌声明 {name!r} 不是 UUID", f"token claim {name!r} is not a UUID")
        ) from exc


def principal_from_claims(payload: dict[str, Any]) -> Principal:
    try:
        role = Role(payload.get("role"))
    except ValueError as exc:
        raise Unauthorized(T("令牌没有有效的角色", "token has no valid role")) from exc
    region = payload.get("region")
    if region is not None and (not isinstance(region, str) or not region.isdigit()):
        raise Unauthorized(
            T(
                "令牌声明 'region' 应为行政区划代码前缀",
                "token claim 'region' must be a division-code prefix",
            )
        )
    p = Principal(
        sub=str(payload.get("sub", "")),
        role=role,
        region=region,
        org=_uuid_claim(payload, "org"),
        staff=_uuid_claim(payload, "staff"),
        elder=_uuid_claim(payload, "elder"),
        claims=payload,
    )
    # A scoped role without its scope would silently see everything: refuse the token.
    if role in {Role.street, Role.community} and not p.region:
        raise Unauthorized(T(f"{role} 令牌必须带有 region", f"a {role} token must carry a region"))
    if role in ORG_ROLES and p.org is None:
        raise Unauthorized(T(f"{role} 令牌必须带有 org", f"a {role} token must carry an org"))
    if role is Role.caregiver and p.staff is None:
        raise Unauthorized(
            T("caregiver 令牌必须带有 staff", "a caregiver token must carry a staff id")
        )
    if role is Role.family and p.elder is None:
        raise Unauthorized(T("family 令牌必须带有 elder", "a family token must carry an elder id"))
    return p


class TokenCodec:
    """Encodes dev/service tokens and verifies incoming ones (HS256 secret or JWKS)."""

    CACHE_SIZE = 10_000

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret = settings.secret("jwt_secret")
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url) if settings.jwt_jwks_url else None
        self._verified: dict[str, tuple[Principal, float]] = {}

    def issue(
        self,
        *,
        role: Role | str,
        sub: str | None = None,
        region: str | None = None,
        org: uuid.UUID | str | None = None,
        staff: uuid.UUID | str | None = None,
        elder: uuid.UUID | str | None = None,
        ttl: int = 3600,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": sub or f"{Role(role).value}-{uuid.uuid4().hex[:8]}",
            "role": Role(role).value,
            "iat": now,
            "exp": now + ttl,
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
        }
        for name, value in (("region", region), ("org", org), ("staff", staff), ("elder", elder)):
            if value is not None:
                claims[name] = str(value)
        principal_from_claims(claims)  # refuse to mint a token the services would reject
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        """The principal a token names. Verified tokens are remembered until they expire:
        a handset sends the same token on every request, and HS256 + claim checks cost more
        than the rest of a cached read."""
        hit = self._verified.get(token)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        principal = self._verify(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, float(principal.claims["exp"]))
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            key: Any = self.secret
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
            payload = jwt.decode(
                token,
                key,
                algorithms=self.settings.jwt_algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "role"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized(T("令牌已过期", "token has expired")) from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(T(f"令牌无效：{exc}", f"invalid token: {exc}")) from exc
        return principal_from_claims(payload)


def principal_from_header(codec: TokenCodec, header: str | None) -> Principal:
    if not header:
        raise Unauthorized(T("缺少 Bearer 令牌", "missing bearer token"))
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            T("Authorization 应为 'Bearer <令牌>'", "authorization must be 'Bearer <token>'")
        )
    return codec.verify(token.strip())


def check_role(principal: Principal, allowed: frozenset[Role]) -> Principal:
    if principal.role not in allowed:
        raise Forbidden(
            T(f"角色 {principal.role} 无权执行此操作", f"role {principal.role} may not do this")
        )
    return principal


async def authenticate(request: Request) -> Principal:
    principal = principal_from_header(
        request.app.state.token_codec, request.headers.get("authorization")
    )
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def require_roles(*roles: Role) -> Any:
    """Dependency: the caller must hold one of ``roles`` (403 otherwise)."""
    allowed = frozenset(roles)

    async def dependency(request: Request) -> Principal:
        # Authenticates inline rather than via a sub-dependency: one level less for
        # FastAPI to solve on every request.
        return check_role(await authenticate(request), allowed)

    return Depends(dependency)


def platform_wide(principal: Principal) -> Principal:
    """For acts that affect every region (the holiday calendar, the raw dead-letter queue):
    an admin without a region scope."""
    if principal.role is not Role.admin or principal.region is not None:
        raise Forbidden(
            T(
                "只有全平台管理员（不限地区）可以执行此操作",
                "only a platform-wide admin (no region scope) may do this",
            )
        )
    return principal


# Who may do what, by kind of act; each router picks one, and scoping narrows it further.
SCOPED_READERS = frozenset(
    {
        Role.admin,
        Role.street,
        Role.community,
        Role.org_admin,
        Role.caregiver,
        Role.service,
        Role.family,
    }
)
STAFF_READERS = SCOPED_READERS - {Role.family}  # lists, devices, operations
CASE_WRITERS = frozenset({Role.admin, Role.street, Role.community, Role.org_admin})

ScopedReader = require_roles(*SCOPED_READERS)
StaffReader = require_roles(*STAFF_READERS)
CaseWriter = require_roles(*CASE_WRITERS)
