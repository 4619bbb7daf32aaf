"""The request's unit of work: one session, one transaction, committed before the response.

``UnitOfWorkMiddleware`` gives every HTTP request a lazily opened session. Handlers and service
functions only add and flush; the middleware commits when the response status is < 400 and
rolls back otherwise — *before* the status line reaches the client, so a 201 always means
committed. It also caps request bodies and implements ``Idempotency-Key`` for POSTs (see
``shared.idempotency``) inside that same transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Depends, Request
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import idempotency
from shared.errors import (
    Conflict,
    Problem,
    ServiceUnavailable,
    Unprocessable,
    constraint_of,
    data_problem,
    is_data_error,
    problem_response,
)
from shared.i18n import T
from shared.pii import PiiCipher

log = logging.getLogger(__name__)


class UnitOfWork:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._session: AsyncSession | None = None

    @property
    def active(self) -> bool:
        return self._session is not None

    async def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessionmaker()
            await self._session.begin()
        return self._session

    async def commit(self) -> None:
        if self._session is not None:
            await self._session.commit()

    async def rollback(self) -> None:
        if self._session is not None:
            await self._session.rollback()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def get_session(request: Request) -> AsyncSession:
    return await request.scope["state"]["uow"].session()


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_BODY_METHODS = {"POST", "PUT", "PATCH"}


class _TooLarge(Exception):
    pass


class UnitOfWorkMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        # resolved per request: the lifespan creates them after the middleware stack is built
        sessionmaker_of: Callable[[], async_sessionmaker[AsyncSession]],
        principal_of: Callable[[Scope], str | None],  # whose Idempotency-Keys these are
        cipher_of: Callable[[], PiiCipher],  # stored responses may hold secrets
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.service = service
        self.sessionmaker_of = sessionmaker_of
        self.principal_of = principal_of
        self.cipher_of = cipher_of
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nul = nul_fields(scope)
        if nul:
            await send_problem(send, nul_problem(nul), instance=scope.get("path"))
            return
        uow = UnitOfWork(self.sessionmaker_of())
        scope.setdefault("state", {})["uow"] = uow
        try:
            if scope["method"] in _BODY_METHODS:
                await self._with_body(scope, receive, send, uow)
            else:
                await self.app(scope, receive, _committing_send(uow, send))
        finally:
            await uow.close()

    async def _with_body(self, scope: Scope, receive: Receive, send: Send, uow: UnitOfWork) -> None:
        try:
            body = await _read_body(receive, self.max_body_bytes)
        except _TooLarge:
            await send_problem(
                send,
                Problem(
                    T(
                        f"请求体超过 {self.max_body_bytes} 字节",
                        f"request body exceeds {self.max_body_bytes} bytes",
                    ),
                    status=413,
                    slug="payload-too-large",
                    title=T("请求体过大", "Request body too large"),
                ),
                instance=scope["path"],
            )
            return
        nul = body_nul_fields(body)
        if nul:
            await send_problem(send, nul_problem(nul), instance=scope["path"])
            return
        replay = _replaying_receive(body, receive)
        key = header(scope, b"idempotency-key")
        principal = self.principal_of(scope) if key is not None else None
        if key is None or principal is None or scope["method"] != "POST":
            await self.app(scope, replay, _committing_send(uow, send))
            return
        if not key or len(key) > idempotency.MAX_KEY_LENGTH or not key.isprintable():
            await send_problem(
                send,
                Problem(
                    T(
                        "Idempotency-Key 应为 1–255 个可打印字符",
                        "Idempotency-Key must be 1-255 printable characters",
                    ),
                    errors=[("Idempotency-Key", T("无效", "invalid"))],
                ),
                instance=scope["path"],
            )
            return
        fingerprint = hashlib.sha256(
            scope["method"].encode()
            + b" "
            + scope["path"].encode()
            + b"?"
            + scope.get("query_string", b"")
            + b"\n"
            + body
        ).digest()
        session = await uow.session()
        earlier = await idempotency.claim(
            session, service=self.service, principal=principal, key=key, fingerprint=fingerprint
        )
        if earlier is not None:
            # Read everything before the rollback expires the loaded record.
            same, status = earlier.fingerprint == fingerprint, earlier.status
            headers = [(k.encode(), v.encode()) for k, v in earlier.headers or []]
            body = (
                self.cipher_of().decrypt_bytes(earlier.body, context=b"idempotency")
                if earlier.body
                else b""
            )
            await uow.rollback()
            if not same:
                await send_problem(
                    send,
                    Problem(
                        T(
                            "此 Idempotency-Key 已用于另一个不同的请求",
                            "this Idempotency-Key was used for a different request",
                        ),
                        status=422,
                        slug="idempotency-key-reused",
                        title=T("幂等键被重复使用", "Idempotency key reused"),
                        errors=[
                            ("Idempotency-Key", T("已用于另一个请求", "used for another request"))
                        ],
                    ),
                    instance=scope["path"],
                )
                return
            headers.append((b"idempotent-replayed", b"true"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(
            scope,
            replay,
            _recording_send(uow, send, self.service, principal, key, self.cipher_of()),
        )


def header(scope: Scope, name: bytes) -> str | None:
    """One request header from a raw ASGI scope (``name`` lower-case)."""
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1").strip()
    return None


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying_receive(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def send_problem(send: Send, problem: Problem, *, instance: str | None = None) -> None:
    """Answer a raw ASGI request with a problem document (``instance``: the request path)."""
    response = problem_response(problem, instance=instance)
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


_NUL = "\x00"


def _strings_with_nul(value: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    if isinstance(value, str):
        if _NUL in value:
            yield ".".join(path) or "body"
    elif isinstance(value, dict):
        for k, v in value.items():
            if _NUL in k:
                yield ".".join((*path, k.replace(_NUL, "\\0"))) or "body"
            yield from _strings_with_nul(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings_with_nul(v, (*path, str(i)))


def body_nul_fields(body: bytes) -> list[str]:
    """JSON body fields whose text holds U+0000. PostgreSQL text cannot store it, so it is
    refused here, for every service, before any handler can mistake the database's refusal
    for an outage. The substring test keeps the common case to one scan of the body."""
    if b"\\u0000" not in body:
        return []
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # what orjson refuses but the route's parser reads (integers past 64 bits)
            parsed = json.loads(body)
        except ValueError:
            return []  # not JSON: the route's own parsing answers 422
    return list(dict.fromkeys(_strings_with_nul(parsed)))


def nul_fields(scope: Scope) -> list[str]:
    """Query parameters and path with U+0000 (``%00``)."""
    fields = []
    if _NUL in scope.get("path", ""):
        fields.append("path")
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if _NUL in name or _NUL in value:
                fields.append(name.replace(_NUL, "\\0") or "query")
    return list(dict.fromkeys(fields))


def nul_problem(fields: list[str]) -> Unprocessable:
    message = T("不能包含空字符 (U+0000)", "must not contain a NUL character (U+0000)")
    return Unprocessable(
        T("请求含有空字符 (U+0000)", "the request holds a NUL character (U+0000)"),
        errors=[(f, message) for f in fields],
    )


async def _finish(uow: UnitOfWork, status: int) -> Problem | None:
    """Commit (status < 400) or roll back; a failed commit becomes the response instead."""
    if status >= 400:
        await uow.rollback()
        return None
    try:
        await uow.commit()
    except IntegrityError as exc:
        # The constraint's name only: the message quotes the conflicting row's values.
        log.info("commit refused by constraint %s", constraint_of(exc))
        return Conflict(
            T("与并发的另一修改冲突，请重试", "the change conflicts with a concurrent one; retry")
        )
    except DBAPIError as exc:
        if isinstance(exc, DataError) or is_data_error(exc):
            log.info("commit refused a value (%s)", type(exc.orig).__name__)
            return data_problem()
        log.error("commit failed (%s)", type(exc.orig).__name__)
        return ServiceUnavailable(
            T("数据库未能保存此修改，请重试", "the database did not accept the change; retry")
        )
    return None


def _committing_send(uow: UnitOfWork, send: Send) -> Send:
    replaced = False

    async def wrapped(message: Message) -> None:
        nonlocal replaced
        if replaced:
            return
        if message["type"] == "http.response.start" and uow.active:
            problem = await _finish(uow, message["status"])
            if problem is not None:
                replaced = True
                await send_problem(send, problem)
                return
        await send(message)

    return wrapped


def _recording_send(
    uow: UnitOfWork, send: Send, service: str, principal: str, key: str, cipher: PiiCipher
) -> Send:
    """Buffer the response, store it with the key, commit, then send it."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        status = start["status"]
        if status < 400:
            headers = [
                [k.decode("latin-1"), v.decode("latin-1")]
                for k, v in start.get("headers", [])
                if k.lower() in {b"content-type", b"location"}
            ]
            session = await uow.session()
            await idempotency.store(
                session,
                service=service,
                principal=principal,
                key=key,
                status=status,
                headers=headers,
                # encrypted at rest: a response may carry a one-time secret (gateway password)
                body=cipher.encrypt_bytes(body, context=b"idempotency"),
            )
        problem = await _finish(uow, status)
        if problem is not None:
            await send_problem(send, problem)
            return
        await send(start)
        await send({"type": "http.response.body", "body": body})

    return wrapped
