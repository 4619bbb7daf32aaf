"""The shape every delivery loop shares (the outbox relays of telemetry and dispatch, and
dispatch's notification sender): lease a batch of due rows with ``SKIP LOCKED``, deliver
them side by side, settle the whole batch in one statement, and sleep unless a full batch
went through.

Rows carry their own schedule (``next_attempt_at``, exponential backoff per row), so an
outage of the receiver costs one leased batch a wake-up, not a busy loop; and any number of
processes may run the same loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg

IDLE_S = 1.0  # with nothing woken by NOTIFY, look again this often (rows retried by schedule)


async def run(
    deliver: Callable[[], Awaitable[tuple[int, int]]],
    *,
    batch: int,
    listener: asyncpg.Connection,
    channel: str,
    stop: asyncio.Event,
) -> None:
    """``deliver()`` → (leased, failed). Straight on after a full batch that all went
    through; otherwise wait for a NOTIFY or ``IDLE_S``."""
    wake = asyncio.Event()
    await listener.add_listener(channel, lambda *_: wake.set())
    while not stop.is_set():
        wake.clear()
        leased, failed = await deliver()
        if leased >= batch and not failed:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), IDLE_S)


def first_error(errors: list[str | None]) -> tuple[int, str | None]:
    """How many failed, and the first reason (one log line per batch, not per row)."""
    bad = [e for e in errors if e is not None]
    return len(bad), bad[0] if bad else None
