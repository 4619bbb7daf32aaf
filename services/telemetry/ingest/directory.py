"""Which devices exist, behind which gateway, for which elder — from the registry.

Read-only SQL into ``registry.devices`` (DESIGN: a service may read another's tables where a
join is the natural answer). Cached in memory; a miss is looked up at once (a device
registered a second ago works).

Keeping the cache true is ``maintain``'s job, on a connection of its own and never inside a
message's transaction: it LISTENs on ``registry_devices`` (a trigger on ``registry.devices``
notifies every insert, update and delete, migration 0004), drops what changed, and reloads
the whole directory every ``REFRESH_S`` as a safety net for changes made while it was not
listening. Unknown ids are remembered (so garbage cannot turn into a query per message) only
while that listener is connected: a registration then clears the entry the moment it
commits, instead of leaving the new device refused for ``NEGATIVE_TTL_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

import asyncpg

log = logging.getLogger(__name__)

CHANNEL = "registry_devices"  # payload: the device_id that changed, or "*" for all
NEGATIVE_TTL_S = 30.0
REFRESH_S = 60.0

_ALL = "SELECT device_id, gateway_id, elder_id, kind FROM registry.devices WHERE status = 'active'"
_ONE = _ALL + " AND device_id = ANY($1::text[])"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    device_id: str
    gateway_id: str
    elder_id: uuid.UUID
    kind: str


class DeviceDirectory:
    def __init__(self) -> None:
        self._known: dict[str, DeviceInfo] = {}
        self._unknown: dict[str, float] = {}
        self._changes = 0  # notifications seen: a lookup that overlaps one is not cached
        self._changed_during_reload: set[str] | None = None
        self.listening = False
        self.loaded_at = 0.0  # monotonic time of the last full reload (0: never)

    # --- the hot path ------------------------------------------------------------------
    async def resolve(
        self, conn: asyncpg.Connection, device_ids: set[str]
    ) -> dict[str, DeviceInfo]:
        """The known devices among ``device_ids``; one query for the misses, never a reload."""
        now = time.monotonic()
        missing = [
            d for d in device_ids if d not in self._known and self._unknown.get(d, 0.0) < now
        ]
        found: dict[str, DeviceInfo] = {}
        if missing:
            changes = self._changes
            rows = await conn.fetch(_ONE, missing)
            found = {row["device_id"]: DeviceInfo(*row) for row in rows}
            # A notification that arrived while the query ran may be newer than its answer:
            # use the answer for this message, but cache nothing from it.
            if changes == self._changes:
                self._known.update(found)
                if self.listening:
                    expires = now + NEGATIVE_TTL_S
                    for device_id in missing:
                        if device_id not in found:
                            self._unknown[device_id] = expires
        return {
            d: info for d in device_ids if (info := found.get(d) or self._known.get(d)) is not None
        }

    # --- keeping it true ---------------------------------------------------------------
    def invalidate(self, device_id: str) -> None:
        """Forget what is cached about ``device_id`` (``"*"``: about every device)."""
        self._changes += 1
        if device_id == "*":
            self._unknown.clear()
            self._known = {}
        else:
            self._unknown.pop(device_id, None)
            self._known.pop(device_id, None)
        if self._changed_during_reload is not None:
            self._changed_during_reload.add(device_id)

    async def reload(self, conn: asyncpg.Connection) -> None:
        """Replace the cache with the registry's active devices (off the hot path)."""
        self._changed_during_reload = set()
        try:
            rows = await conn.fetch(_ALL)
            known = {r["device_id"]: DeviceInfo(*r) for r in rows}
            changed = self._changed_during_reload
            if "*" in changed:
                known = {}
            for device_id in changed:
                known.pop(device_id, None)
            self._known = known
            self._unknown = {d: t for d, t in self._unknown.items() if d not in known}
            self.loaded_at = time.monotonic()
        finally:
            self._changed_during_reload = None

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.invalidate(payload)

    def _on_lost(self, _conn: object) -> None:
        # Changes made from now on go unheard: stop trusting "unknown" until we listen again.
        self.listening = False
        self._unknown.clear()

    async def maintain(self, dsn: str, *, refresh_s: float = REFRESH_S) -> None:
        """Listen for registry changes and reload every ``refresh_s``, reconnecting after a
        failure; runs until cancelled."""
        delay = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(dsn, server_settings={"timezone": "UTC"})
                conn.add_termination_listener(self._on_lost)
                await conn.add_listener(CHANNEL, self._on_notify)
                self.listening = True
                self._unknown.clear()  # whatever changed while we were deaf
                while True:
                    await self.reload(conn)
                    delay = 0.5
                    await asyncio.sleep(refresh_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "device directory: %s; reconnecting in %.1fs", type(exc).__name__, delay
                )
            finally:
                self._on_lost(conn)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
