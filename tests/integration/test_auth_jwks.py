"""JWKS mode against a local issuer: user tokens verified with the issuer's RSA keys, the
platform's own HS256 service tokens still accepted (and only those), keys fetched off the
event loop, rotation picked up, made-up key ids unable to flood the issuer."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from shared.auth import TokenCodec, UnknownSigningKey
from shared.config import Settings
from shared.errors import Unauthorized
from tests.factories import elder_body

ISSUER = "https://idp.example.test/realms/eldercare"
AUDIENCE = "eldercare"


class Issuer:
    """An OIDC issuer's JWKS endpoint on 127.0.0.1, with keys that can be rotated."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.delay_s = delay_s
        self.requests = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests += 1
                if issuer.delay_s:
                    time.sleep(issuer.delay_s)
                body = json.dumps({"keys": issuer.jwks()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_key(self) -> str:
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def jwks(self) -> list[dict]:
        out = []
        for kid, key in self.keys.items():
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return out

    def token(self, kid: str, role: str = "admin", iss: str = ISSUER, **claims) -> str:
        now = int(time.time())
        body = {"sub": "u1", "role": role, "iss": iss, "aud": AUDIENCE, "iat": now}
        body |= {"exp": now + 600, **claims}
        return jwt.encode(body, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer():
    server = Issuer()
    server.add_key()
    yield server
    server.close()


def jwks_settings(url: str, **overrides) -> Settings:
    return Settings(
        jwt_secret="platform-shared-secret-" + "s" * 20,
        jwt_jwks_url=url,
        jwt_algorithms=["RS256"],
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_jwks_min_refresh_s=0.2,
        **overrides,
    )


def wait_fetched(codec: TokenCodec, within: float = 10.0) -> None:
    keys = codec._jwks
    assert keys is not None and keys.wait_refreshed(0, within), "JWKS never fetched"


async def test_user_tokens_by_jwks_and_the_platforms_service_tokens_by_secret(issuer):
    codec = TokenCodec(jwks_settings(issuer.url))
    try:
        wait_fetched(codec)
        (kid,) = issuer.keys
        admin = await codec.verify_async(issuer.token(kid, "admin"))
        assert admin.role == "admin" and admin.sub == "u1"
        # the relay's hand-off token: minted here, HS256, the platform's own issuer
        service = await codec.verify_async(codec.issue(role="service", sub="telemetry-relay"))
        assert service.role == "service" and service.sub == "telemetry-relay"
        assert (
            jwt.decode(codec.issue(role="service"), options={"verify_signature": False})["iss"]
            == "eldercare"
        )
        refused = [
            codec.issue(role="admin"),  # the shared secret never vouches for a user
            jwt.encode(  # a service token claiming the user issuer, signed with the secret
                {"role": "service", "iss": ISSUER, "aud": AUDIENCE, "exp": time.time() + 60},
                codec.secret,
                algorithm="HS256",
            ),
            issuer.token(kid, "admin", iss="https://elsewhere.example"),
            issuer.token(kid, "admin", aud="someone-else"),
            jwt.encode({"role": "admin", "iss": ISSUER, "aud": AUDIENCE}, None, algorithm="none"),
        ]
        for token in refused:
            with pytest.raises(Unauthorized):
                await codec.verify_async(token)
        # a user token signed by a key the issuer does not publish
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(
            {"role": "admin", "iss": ISSUER, "aud": AUDIENCE, "exp": time.time() + 60},
            stranger,
            algorithm="RS256",
            headers={"kid": kid},
        )
        with pytest.raises(Unauthorized):
            await codec.verify_async(forged)
    finally:
        codec.close()


async def test_a_rotated_key_is_fetched_off_the_event_loop():
    issuer = Issuer(delay_s=0.5)  # a slow issuer: a blocking fetch would freeze the loop
    issuer.add_key()
    codec = TokenCodec(jwks_settings(issuer.url))
    try:
        wait_fetched(codec)
        new_kid = issuer.add_key()  # the issuer rotates
        token = issuer.token(new_kid, "community", region="350212")
        fetched_before = issuer.requests
        with pytest.raises(UnknownSigningKey):
            codec.verify(token)  # the sync path does no I/O: 401 until the key is here
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(ticker())
        try:
            principal = await codec.verify_async(token)
        finally:
            beat.cancel()
        assert principal.role == "community" and principal.region == "350212"
        assert issuer.requests > fetched_before
        assert ticks >= 5, "the event loop stood still while the keys were fetched"
    finally:
        codec.close()
        issuer.close()


async def test_made_up_key_ids_cannot_flood_the_issuer(issuer):
    codec = TokenCodec(jwks_settings(issuer.url))
    try:
        wait_fetched(codec)
        before = issuer.requests
        (kid,) = issuer.keys
        fakes = []
        for _ in range(40):
            token = issuer.token(kid, "admin")
            head, _, rest = token.partition(".")
            header = json.loads(jwt.utils.base64url_decode(head))
            header["kid"] = uuid.uuid4().hex
            fakes.append(
                jwt.utils.base64url_encode(json.dumps(header).encode()).decode() + "." + rest
            )
        results = await asyncio.gather(
            *(codec.verify_async(t) for t in fakes), return_exceptions=True
        )
        assert all(isinstance(r, Unauthorized) for r in results)
        assert issuer.requests - before <= 3  # one shared, rate-limited refresh
    finally:
        codec.close()


async def test_an_app_in_jwks_mode_serves_users_and_the_relay(issuer, settings):
    from services.registry.app import create_app

    app = create_app(
        settings.model_copy(
            update={
                "jwt_jwks_url": issuer.url,
                "jwt_algorithms": ["RS256"],
                "jwt_issuer": ISSUER,
                "jwt_jwks_min_refresh_s": 0.2,
            }
        )
    )
    codec: TokenCodec = app.state.token_codec
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
                (kid,) = issuer.keys

                async def get(token: str) -> int:
                    r = await client.get("/v1/elders", headers={"Authorization": f"Bearer {token}"})
                    return r.status_code

                assert await get(issuer.token(kid, "admin")) == 200
                assert await get(codec.issue(role="service", sub="dispatch")) == 200
                assert await get(codec.issue(role="admin")) == 401
                rotated = issuer.add_key()  # the first request with it waits for the keys
                assert await get(issuer.token(rotated, "admin")) == 200
                # the single-elder read (the registry's fast path) waits for a new key too
                admin = {"Authorization": f"Bearer {issuer.token(rotated, 'admin')}"}
                made = await client.post("/v1/elders", json=elder_body(), headers=admin)
                assert made.status_code == 201, made.text
                again = issuer.add_key()
                r = await client.get(
                    f"/v1/elders/{made.json()['id']}",
                    headers={"Authorization": f"Bearer {issuer.token(again, 'admin')}"},
                )
                assert r.status_code == 200, r.text
    finally:
        codec.close()
