from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel


class DeadLetterRead(BaseModel):
    id: int
    received_at: AwareDatetime
    topic: str
    reason: str
    detail: str
    payload_preview: str

    @classmethod
    def of(cls, row: Any) -> DeadLetterRead:
        return cls(
            id=row.id,
            received_at=row.received_at,
            topic=row.topic,
            reason=row.reason,
            detail=row.detail,
            payload_preview=row.payload[:300].decode("utf-8", "replace"),
        )
