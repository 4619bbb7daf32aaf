"""Bearer-JWT authentication and the principal every request acts as.

Roles (DESIGN.md): admin (district civil affairs), street, community, org_admin, caregiver,
family, service (service-to-service), gateway (MQTT only). A token carries the scope its role
needs: ``region`` (an administrative-division code prefix) for admin/street/community,
``org`` for org_admin/caregiver, ``staff`` for caregivers, ``elder`` for family members.

401 means "who are you?" (missing, expired, forged token); 403 means "your role may not do
this"; a resource outside the caller's scope answers 404 so its existence does not leak.

Two ways to verify. Without ``jwt_jwks_url``: every token is HS256 with the shared secret.
With it (production, an OIDC issuer): user tokens are verified against the issuer's JWKS;
the platform's own ``service`` tokens (the outbox relay, service-to-service calls) are still
minted here, HS256 with the shared secret and issuer ``jwt_service_issuer`` — and an HS256
token is accepted only for that role from that issuer, so the shared secret can never stand
in for a user. The issuer's keys are fetched by a background thread (at start, every
``jwt_jwks_refresh_s``, and at once when a token names a key id not seen yet); a request never
waits on the network on the event loop: the async path awaits the refresh in a thread,
bounded, and the sync path (middlewares) answers 401 for a key it does not hold yet.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, Request

from shared.config import Settings
from shared.errors import Forbidden, Unauthorized
from shared.i18n import T

log = logging.getLogger(__name__)

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})


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


class UnknownSigningKey(Unauthorized):
    """The token names a key id the issuer's key set (as last fetched) does not have."""


class JwksKeys:
    """The issuer's signing keys, kept fresh by a daemon thread; lookups never block.

    ``get(kid)`` answers from memory. A miss asks the thread for an early refresh (at most
    one per ``min_refresh_s``: a flood of tokens with made-up key ids cannot turn into a flood
    of fetches); ``await wait_for(kid)`` waits for that refresh in a worker thread, bounded.
    """

    def __init__(
        self,
        url: str,
        *,
        refresh_s: float = 300.0,
        timeout_s: float = 5.0,
        min_refresh_s: float = 10.0,
    ) -> None:
        self.url = url
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self.min_refresh_s = min_refresh_s
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._fetched = threading.Condition(self._lock)
        self._generation = 0  # completed fetch attempts
        self._last_fetch = float("-inf")
        self._stop = threading.Event()
        self.fetches = 0
        self._thread = threading.Thread(target=self._run, name="jwks-refresh", daemon=True)
        self._thread.start()

    def get(self, kid: str | None) -> Any | None:
        with self._lock:
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))  # an issuer with one key may omit kid
            return self._keys.get(kid) if kid is not None else None

    def request_refresh(self) -> None:
        self._wake.set()

    def wait_refreshed(self, after: int, timeout: float) -> bool:
        """Block (a worker thread, never the event loop) until a fetch newer than ``after``
        has completed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._fetched:
            while self._generation <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._fetched.wait(left)
        return True

    @property
    def generation(self) -> int:
        with self._lock:
            return self._generation

    async def wait_for(self, kid: str | None) -> Any | None:
        """The key ``kid``, after one refresh if it is not known yet (bounded by the fetch
        timeout plus the refresh rate limit); None if the issuer does not have it."""
        key = self.get(kid)
        if key is not None:
            return key
        seen = self.generation
        self.request_refresh()
        bound = self.timeout_s + self.min_refresh_s + 1.0
        await asyncio.to_thread(self.wait_refreshed, seen, bound)
        return self.get(kid)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = max(self._last_fetch + self.min_refresh_s - time.monotonic(), 0.0)
            if wait and self._stop.wait(wait):
                return
            self._fetch()
            self._wake.wait(self.refresh_s)
            self._wake.clear()

    def _fetch(self) -> None:
        self._last_fetch = time.monotonic()
        self.fetches += 1
        keys: dict[str, Any] | None = None
        try:
            response = httpx.get(self.url, timeout=self.timeout_s)
            response.raise_for_status()
            found = jwt.PyJWKSet.from_dict(response.json())
            keys = {
                k.key_id or "": k.key
                for k in found.keys
                if getattr(k, "public_key_use", None) in (None, "sig")
            }
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            # keep the keys we have: an issuer blip must not log everyone out
            log.warning("JWKS fetch from %s failed: %s", self.url, type(exc).__name__)
        with self._fetched:
            if keys is not None:
                self._keys = keys
            self._generation += 1
            self._fetched.notify_all()


class TokenCodec:
    """Encodes dev/service tokens and verifies incoming ones (HS256 secret and/or JWKS)."""

    CACHE_SIZE = 10_000

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret = settings.secret("jwt_secret")
        self._jwks = (
            JwksKeys(
                settings.jwt_jwks_url,
                refresh_s=settings.jwt_jwks_refresh_s,
                timeout_s=settings.jwt_jwks_timeout_s,
                min_refresh_s=settings.jwt_jwks_min_refresh_s,
            )
            if settings.jwt_jwks_url
            else None
        )
        self._verified: dict[str, tuple[Principal, float]] = {}

    def close(self) -> None:
        if self._jwks is not None:
            self._jwks.close()

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
        """An HS256 token. With a JWKS only ``service`` tokens minted here are accepted (the
        issuer mints everyone else's); without one, any role (development, tests)."""
        now = int(time.time())
        role = Role(role)
        claims: dict[str, Any] = {
            "sub": sub or f"{role.value}-{uuid.uuid4().hex[:8]}",
            "role": role.value,
            "iat": now,
            "exp": now + ttl,
            "iss": self._hmac_issuer(role),
            "aud": self.settings.jwt_audience,
        }
        for name, value in (("region", region), ("org", org), ("staff", staff), ("elder", elder)):
            if value is not None:
                claims[name] = str(value)
        principal_from_claims(claims)  # refuse to mint a token the services would reject
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def _hmac_issuer(self, role: Role) -> str:
        if role is Role.service or self._jwks is not None:
            return self.settings.jwt_service_issuer
        return self.settings.jwt_issuer

    def verify(self, token: str) -> Principal:
        """The principal a token names. Verified tokens are remembered until they expire:
        a handset sends the same token on every request, and HS256 + claim checks cost more
        than the rest of a cached read. Never does I/O: a key not fetched yet is a 401
        (``UnknownSigningKey``; ``verify_async`` waits for it instead)."""
        hit = self._verified.get(token)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        return self._remember(token, self._verify(token))

    async def verify_async(self, token: str) -> Principal:
        """``verify``, waiting (off the event loop, bounded) for a key the issuer has just
        rotated in."""
        try:
            return self.verify(token)
        except UnknownSigningKey:
            if self._jwks is None:
                raise
            kid = _header(token).get("kid")
            if await self._jwks.wait_for(kid if isinstance(kid, str) else None) is None:
                raise
            return self.verify(token)

    def _remember(self, token: str, principal: Principal) -> Principal:
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, float(principal.claims["exp"]))
        return principal

    def _verify(self, token: str) -> Principal:
        header = _header(token)
        alg = header.get("alg")
        if alg in HMAC_ALGORITHMS or self._jwks is None:
            return self._verify_hmac(token)
        if alg not in self.settings.jwt_algorithms:
            raise Unauthorized(
                T(
                    f"令牌无效：不接受算法 {alg!r}",
                    f"invalid token: algorithm {alg!r} is not accepted",
                )
            )
        kid = header.get("kid")
        key = self._jwks.get(kid if isinstance(kid, str) else None)
        if key is None:
            self._jwks.request_refresh()
            raise UnknownSigningKey("invalid token: signing key not known (yet)")
        return principal_from_claims(self._decode(token, key, [alg], self.settings.jwt_issuer))

    def _verify_hmac(self, token: str) -> Principal:
        """HS256 with the shared secret. With a JWKS configured: only ``service`` tokens of
        the platform's own issuer (the secret must never vouch for a user)."""
        if self._jwks is not None:
            payload = self._decode(token, self.secret, ["HS256"], self.settings.jwt_service_issuer)
            if payload.get("role") != Role.service:
                raise Unauthorized(
                    T(
                        "令牌无效：此处只签发服务令牌",
                        "invalid token: only service tokens are signed here",
                    )
                )
            return principal_from_claims(payload)
        allowed = [a for a in self.settings.jwt_algorithms if a in HMAC_ALGORITHMS] or ["HS256"]
        unverified = _unverified_claims(token)
        issuer = (
            self.settings.jwt_service_issuer
            if unverified.get("role") == Role.service
            and unverified.get("iss") == self.settings.jwt_service_issuer
            else self.settings.jwt_issuer
        )
        return principal_from_claims(self._decode(token, self.secret, allowed, issuer))

    def _decode(self, token: str, key: Any, algorithms: list[str], issuer: str) -> dict:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.settings.jwt_audience,
                issuer=issuer,
                options={"require": ["exp", "role"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized(T("令牌已过期", "token has expired")) from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(T(f"令牌无效：{exc}", f"invalid token: {exc}")) from exc


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Unauthorized(T(f"令牌无效：{exc}", f"invalid token: {exc}")) from exc


def _unverified_claims(token: str) -> dict[str, Any]:
    """Only to pick which issuer to check; the signature is verified right after."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Unauthorized(T(f"令牌无效：{exc}", f"invalid token: {exc}")) from exc
    return claims if isinstance(claims, dict) else {}


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthorized(T("缺少 Bearer 令牌", "missing bearer token"))
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            T("Authorization 应为 'Bearer <令牌>'", "authorization must be 'Bearer <token>'")
        )
    return token.strip()


def principal_from_header(codec: TokenCodec, header: str | None) -> Principal:
    """Sync (middlewares): never waits for a key; see ``TokenCodec.verify``."""
    return codec.verify(bearer_token(header))


def check_role(principal: Principal, allowed: frozenset[Role]) -> Principal:
    if principal.role not in allowed:
        raise Forbidden(
            T(f"角色 {principal.role} 无权执行此操作", f"role {principal.role} may not do this")
        )
    return principal


async def authenticate(request: Request) -> Principal:
    token = bearer_token(request.headers.get("authorization"))
    principal = await request.app.state.token_codec.verify_async(token)
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
