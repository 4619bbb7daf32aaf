from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class GatewayRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    gateway_id: str
    online: bool
    changed_at: datetime
