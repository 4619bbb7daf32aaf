"""Background flow: moves recorded ahead of their day take effect on it (hourly)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI

from services.registry.elders.moves import service
from shared import clock
from shared.tasks import supervised

log = logging.getLogger(__name__)

INTERVAL_S = 3600.0


async def apply_due_moves(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session, session.begin():
        return await service.apply_due(session, today=clock.today())


async def _loop(app: FastAPI) -> None:
    while True:
        n = await apply_due_moves(app)
        if n:
            log.info("applied %d moves that fell due", n)
        await asyncio.sleep(INTERVAL_S)


async def start(app: FastAPI) -> None:
    app.state.moves_task = asyncio.create_task(supervised("due moves", lambda: _loop(app)))


async def stop(app: FastAPI) -> None:
    task = getattr(app.state, "moves_task", None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
