"""What every service's OpenAPI document says beyond what FastAPI derives from the routes:
problem documents, the bearer-token security scheme, and ``Idempotency-Key`` on every POST.

Generated clients read these: without the security scheme they send no token, without the
header parameter a mobile developer never learns that retries are safe."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from shared.errors import add_problem_schemas
from shared.idempotency import MAX_KEY_LENGTH

BEARER = "bearerAuth"
# Operations answered without a token (probes and scrapes).
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: a POST repeated with the same key (by the same caller) replays "
        "the first response (`Idempotent-Replayed: true`) instead of acting twice, even when "
        "both arrive at once. A failed attempt is not remembered. Reusing a key for a "
        "different request answers 422. Keys are kept for at least 24 hours."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}


# The probes are plain routes of ``shared.observability`` with hand-made responses; what they
# answer is said here, so the document matches the wire (a scraper reads text, not JSON).
_READY = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "checks": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "each dependency: `ok`, or what is wrong",
        },
    },
}
PROBE_RESPONSES: dict[str, dict[str, Any]] = {
    "/metrics": {
        "200": {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        }
    },
    "/readyz": {
        "200": {
            "description": "every dependency answers",
            "content": {"application/json": {"schema": _READY}},
        },
        "503": {
            "description": "a dependency does not answer (`checks` says which)",
            "content": {"application/json": {"schema": _READY}},
        },
    },
}


def finish(openapi: dict[str, Any], *, idempotency_retention: str | None = None) -> dict[str, Any]:
    add_problem_schemas(openapi)
    for path, responses in PROBE_RESPONSES.items():
        operation = openapi.get("paths", {}).get(path, {}).get("get")
        if operation is not None:
            operation.setdefault("responses", {}).update(responses)
    components = openapi.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "a token from your identity provider, or `eldercare token` in development",
    }
    key = dict(IDEMPOTENCY_KEY)
    if idempotency_retention:
        key["description"] = key["description"].replace("24 hours", idempotency_retention)
    for path, operations in openapi.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            if path not in PUBLIC_PATHS:
                operation.setdefault("security", [{BEARER: []}])
            if method == "post":
                params = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in params):
                    params.append(key)
    return openapi
