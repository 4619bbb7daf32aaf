from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    device_id: str
    gateway_id: str
    event: str
    msg_id: str
    device_ts: datetime
    received_at: datetime
    skew_s: int
    data: dict
