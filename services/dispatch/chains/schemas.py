from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ChainStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["offer", "notify_family", "notify_community", "advise_120"]
    wait_s: int = Field(0, ge=0, le=3600, description="seconds to wait before the next step")


class Chain(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[ChainStep] = Field(min_length=1, max_length=20)
    max_rounds: int = Field(1, ge=1, le=5, description="how often the chain is repeated at most")


class OrgSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chain: Chain | None = None
    gps_tolerance_m: float | None = Field(None, ge=20, le=5000)


class OrgSettingsRead(BaseModel):
    org_id: uuid.UUID
    chain: Chain
    chain_is_default: bool
    gps_tolerance_m: float
