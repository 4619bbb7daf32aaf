"""Long-running background loops that restart instead of dying silently."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def supervised(
    name: str, start: Callable[[], Awaitable[None]], *, max_delay: float = 30.0
) -> None:
    """Run ``start()`` until it returns; if it raises, log and run it again after a backoff.
    Cancellation (shutdown) ends it."""
    delay = 0.5
    while True:
        try:
            await start()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s crashed; restarting in %.1fs", name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
