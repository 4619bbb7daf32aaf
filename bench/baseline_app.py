"""The baseline the registry is measured against: bare Starlette + an asyncpg pool.

No validation, auth, ORM, unit of work, encryption or middleware — the least a Python service
can do to answer the same requests from the same table. Run with
``BENCH_DATABASE_URL=postgresql://… uvicorn --factory bench.baseline_app:create_app``.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SELECT_ELDER = (
    "SELECT id, name, birth_date, gender, hukou_region, residence_region, address "
    "FROM registry.elders WHERE id = $1"
)
INSERT_ELDER = (
    "INSERT INTO registry.elders (id, id_number_enc, id_number_hash, id_number_masked, name, "
    "birth_date, gender, phone_enc, phone_masked, hukou_region, residence_region, address, "
    "lat, lon, zone, living_arrangement, lives_at_home) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
)
NOT_FOUND = Response(b'{"detail":"not found"}', status_code=404, media_type="application/json")


def _json(data: object, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(data, default=str), status_code=status_code, media_type="application/json"
    )


async def get_elder(request: Request) -> Response:
    try:
        elder_id = uuid.UUID(request.path_params["elder_id"])
    except ValueError:
        return NOT_FOUND
    row = await request.app.state.pool.fetchrow(SELECT_ELDER, elder_id)
    if row is None:
        return NOT_FOUND
    return _json(dict(row))


async def create_elder(request: Request) -> Response:
    """A plain INSERT of the columns the registry writes; the ID number is stored unencrypted."""
    body = orjson.loads(await request.body())
    number: str = body["id_number"]
    phone: str | None = body.get("phone")
    elder_id = uuid.uuid4()
    await request.app.state.pool.execute(
        INSERT_ELDER,
        elder_id,
        number.encode(),
        hashlib.sha256(number.encode()).digest(),
        number[:4] + "*" * 10 + number[-4:],
        body["name"],
        date(int(number[6:10]), int(number[10:12]), int(number[12:14])),
        "male" if int(number[16]) % 2 else "female",
        phone.encode() if phone else None,
        phone[:3] + "****" + phone[-4:] if phone else None,
        body["hukou_region"],
        body.get("residence_region") or body["hukou_region"],
        body["address"],
        body.get("lat"),
        body.get("lon"),
        body["zone"],
        body["living_arrangement"],
        body.get("lives_at_home", True),
    )
    return _json({"id": elder_id}, status_code=201)


def create_app() -> Starlette:
    url = os.environ["BENCH_DATABASE_URL"]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with asyncpg.create_pool(url, min_size=10, max_size=10) as pool:
            app.state.pool = pool
            yield

    return Starlette(
        routes=[
            Route("/v1/elders", create_elder, methods=["POST"]),
            Route("/v1/elders/{elder_id}", get_elder, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
