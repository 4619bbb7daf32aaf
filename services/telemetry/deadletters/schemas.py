from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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
