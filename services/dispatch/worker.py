"""Dispatch's background work, in its own module: escalation timers, the outbox relay to
telemetry, notification delivery and plan generation. It runs inside every dispatch process
(``settings.dispatch_background``) or alone (``python -m services.dispatch.worker``); every
loop leases rows with ``SKIP LOCKED``, so any number of copies may run side by side."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.dispatch import timers
from services.dispatch.notifications import delivery
from services.dispatch.notifications.sender import Notifier, notifier_from
from services.dispatch.outbox.relay import Relay
from services.dispatch.plans import generator
from shared.config import Settings, get_settings
from shared.db import create_engine, create_sessionmaker, plain_url
from shared.tasks import supervised

log = logging.getLogger(__name__)

PLAN_EVERY_S = 3600.0


class DispatchWorker:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.notifier = notifier or notifier_from(settings)
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.relay: Relay | None = None
        self._connections: list[asyncpg.Connection] = []
        self.pool: asyncpg.Pool | None = None

    async def _listener(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(plain_url(self.settings.database_url))
        self._connections.append(conn)
        return conn

    async def start(self) -> None:
        url = plain_url(self.settings.database_url)
        # Single statements only, no session state (listeners have their own connections):
        # the default reset on release would cost every delivery round another round trip.
        self.pool = await asyncpg.create_pool(
            url, min_size=1, max_size=3, server_settings={"timezone": "UTC"}, reset=_no_reset
        )
        self.relay = Relay(self.settings)
        pool, relay = self.pool, self.relay

        async def timer_loop() -> None:
            await timers.run(self.sessionmaker, await self._listener(), self.stop)

        async def relay_loop() -> None:
            await relay.run(pool, await self._listener(), self.stop)

        async def notify_loop() -> None:
            await delivery.run(pool, await self._listener(), self.notifier, self.stop)

        async def plan_loop() -> None:
            while not self.stop.is_set():
                async with self.sessionmaker.begin() as session:
                    made = await generator.generate_all(session=session)
                if made:
                    log.info("generated %d planned visits", made)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), PLAN_EVERY_S)

        for name, loop in (
            ("dispatch timers", timer_loop),
            ("dispatch outbox relay", relay_loop),
            ("dispatch notifications", notify_loop),
            ("dispatch plan generation", plan_loop),
        ):
            self.tasks.append(asyncio.create_task(supervised(name, loop)))

    async def close(self) -> None:
        self.stop.set()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for conn in self._connections:
            with contextlib.suppress(Exception):
                await conn.close()
        if self.relay:
            await self.relay.close()
        close = getattr(self.notifier, "close", None)
        if close:
            await close()
        if self.pool:
            await self.pool.close()


async def _no_reset(connection: asyncpg.Connection) -> None:
    return None


async def _main() -> None:
    settings = get_settings()
    engine = create_engine(settings.database_url, pool_size=3, max_overflow=2)
    worker = DispatchWorker(settings, create_sessionmaker(engine))
    await worker.start()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await worker.close()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(_main())
