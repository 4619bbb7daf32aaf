from __future__ import annotations

import uuid

from pydantic import BaseModel


class Kpi(BaseModel):
    name: str
    within_seconds: int
    count: int
    share: float | None
    target: float
    met: bool | None


class OrgKpis(BaseModel):
    org_id: uuid.UUID
    month: str
    dispatches: int
    cancelled: int
    kpis: list[Kpi]
