"""JSON logs carrying the request id, Prometheus metrics, and /healthz /readyz /metrics."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import i18n

log = logging.getLogger(__name__)

# A readiness probe must answer before the orchestrator's own timeout (k8s: 1 s by default is
# tight, 10 s periods): a check that hangs is reported as `timeout`, not waited for.
READY_CHECK_TIMEOUT_S = 3.0

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

HTTP_REQUESTS = Counter(
    "eldercare_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "eldercare_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(service: str, *, level: str = "INFO", json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log duplicates ours and costs ~10 % of a fast request.
    logging.getLogger("uvicorn.access").disabled = True


class ObservabilityMiddleware:
    """Request id in/out (``X-Request-ID``), the request's language (``Accept-Language``, see
    ``shared.i18n``), per-route latency and status metrics."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = accept_language = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("latin-1")[:64]
            elif name == b"accept-language":
                accept_language = value.decode("latin-1")
        rid = rid or uuid.uuid4().hex
        token = request_id_var.set(rid)
        lang_token = i18n.current_lang.set(i18n.negotiate(accept_language))
        start = time.perf_counter()
        status = 500
        rid_header = (b"x-request-id", rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, method, path, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, path).observe(time.perf_counter() - start)
            request_id_var.reset(token)
            i18n.current_lang.reset(lang_token)


ReadyCheck = Callable[[Request], Awaitable[None]]


async def run_check(name: str, check: ReadyCheck, request: Request) -> str:
    """``ok``, ``timeout`` or ``unavailable`` — a short, stable word for the probe's body;
    what went wrong (exception and text, which may name hosts and users) goes to the log."""
    try:
        await asyncio.wait_for(check(request), READY_CHECK_TIMEOUT_S)
    except TimeoutError:
        log.warning("readiness check %r timed out after %.1fs", name, READY_CHECK_TIMEOUT_S)
        return "timeout"
    except Exception:  # readiness reports failures, it never raises
        log.warning("readiness check %r failed", name, exc_info=True)
        return "unavailable"
    return "ok"


def health_router(checks: dict[str, ReadyCheck]) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: dependencies answer (`checks`: `ok`, `unavailable` or `timeout` "
        "each; details are in the service's log)",
    )
    async def readyz(request: Request) -> Response:
        names = list(checks)
        outcomes = await asyncio.gather(*(run_check(n, checks[n], request) for n in names))
        results = dict(zip(names, outcomes, strict=True))
        ok = all(outcome == "ok" for outcome in outcomes)
        body = {"status": "ok" if ok else "unavailable", "checks": results}
        return Response(
            orjson.dumps(body), status_code=200 if ok else 503, media_type="application/json"
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
