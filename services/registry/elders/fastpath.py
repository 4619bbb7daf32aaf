"""``GET /v1/elders/{id}`` without FastAPI's routing and dependency solving.

This one read is most of the platform's traffic (apps poll it, dispatch and subsidy look
elders up), and FastAPI's per-request machinery costs more CPU than the read itself. The
middleware answers exactly ``GET /v1/elders/<uuid>`` with no query string, using the same
pieces as the documented route in ``router.py`` — token verification, the role list, the
scoped query (``service.get_row``) and the same body — and passes everything else (e.g.
``?include=pii``) to FastAPI. ``tests/integration/test_elders.py`` checks both paths answer
identically.
"""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp, Receive, Scope, Send

from services.registry.elders import service
from shared import clock
from shared.auth import SCOPED_READERS, UnknownSigningKey, check_role, principal_from_header
from shared.errors import Problem
from shared.uow import header, send_problem

PREFIX = "/v1/elders/"
_UUID_LEN = 36
_JSON = [(b"content-type", b"application/json")]


class ElderReadFastPath:
    def __init__(self, app: ASGIApp, *, state: object) -> None:
        self.app = app
        self.state = state  # the FastAPI app's state: token codec, read pool
        self.route = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["query_string"]
            or len(path) != len(PREFIX) + _UUID_LEN
            or not path.startswith(PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        try:
            elder_id = uuid.UUID(path[len(PREFIX) :])
        except ValueError:
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE  # for the per-route metrics label
        try:
            principal = check_role(
                principal_from_header(self.state.token_codec, header(scope, b"authorization")),
                SCOPED_READERS,
            )
            row = await service.get_row(
                pool=self.state.read_pool, principal=principal, elder_id=elder_id
            )
        except UnknownSigningKey:
            # A key the issuer rotated in a moment ago: the routed path waits for it (off
            # the event loop) instead of answering 401 to a valid token.
            await self.app(scope, receive, send)
            return
        except Problem as problem:
            await send_problem(send, problem, instance=path)
            return
        body = service.read_json(row, clock.today())
        headers = [*_JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _Route:
    path = "/v1/elders/{elder_id}"


_ROUTE = _Route()
