"""Which devices exist, behind which gateway, for which elder — from the registry.

Read-only SQL into ``registry.devices`` (DESIGN: a service may read another's tables where a
join is the natural answer). Cached in memory; a miss is looked up at once (a device
registered a second ago works), and unknown ids are remembered briefly so garbage cannot
turn into a query per message.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import asyncpg

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
        self._loaded_at = 0.0

    async def refresh(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch(_ALL)
        self._known = {r["device_id"]: DeviceInfo(*r) for r in rows}
        self._unknown.clear()
        self._loaded_at = time.monotonic()

    async def resolve(
        self, conn: asyncpg.Connection, device_ids: set[str]
    ) -> dict[str, DeviceInfo]:
        now = time.monotonic()
        if now - self._loaded_at > REFRESH_S:
            await self.refresh(conn)
        missing = [
            d for d in device_ids if d not in self._known and self._unknown.get(d, 0.0) < now
        ]
        if missing:
            for row in await conn.fetch(_ONE, missing):
                self._known[row["device_id"]] = DeviceInfo(*row)
            for device_id in missing:
                if device_id not in self._known:
                    self._unknown[device_id] = now + NEGATIVE_TTL_S
        return {d: self._known[d] for d in device_ids if d in self._known}
