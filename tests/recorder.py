"""A real HTTP server that records what it receives (stands in for another service)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.embedded import free_port


@dataclass
class Recorder:
    port: int = field(default_factory=free_port)
    status: int = 201
    requests: list[dict] = field(default_factory=list)
    seen_keys: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        async def record(request: Request) -> JSONResponse:
            body = await request.json()
            entry = {
                "path": request.url.path,
                "body": body,
                "key": request.headers.get("idempotency-key"),
                "auth": request.headers.get("authorization"),
                "status": self.status,
            }
            self.requests.append(entry)
            if self.status >= 300:
                return JSONResponse({"detail": "unavailable"}, status_code=self.status)
            replay = entry["key"] in self.seen_keys
            self.seen_keys.add(entry["key"])
            return JSONResponse({"id": "d-1", "replayed": replay}, status_code=201)

        return Starlette(routes=[Route("/{path:path}", record, methods=["POST"])])

    def wait_for(self, predicate, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.02)
        raise AssertionError(f"condition not met within {timeout}s: {self.requests}")


class RecorderServer:
    def __init__(self, recorder: Recorder) -> None:
        config = uvicorn.Config(
            recorder.app(),
            host="127.0.0.1",
            port=recorder.port,
            log_level="warning",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RecorderServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("recorder did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
