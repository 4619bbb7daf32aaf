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


class GatewayRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    gateway_id: str
    online: bool
    changed_at: datetime


class DeadLetterRead(BaseModel):
    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload_preview: str

    @classmethod
    def of(cls, row) -> DeadLetterRead:
        return cls(
            id=row.id,
            received_at=row.received_at,
            topic=row.topic,
            reason=row.reason,
            detail=row.detail,
            payload_preview=row.payload[:300].decode("utf-8", "replace"),
        )
