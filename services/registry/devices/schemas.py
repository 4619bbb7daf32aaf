from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.i18n import T
from shared.ids import DEVICE_ID_PATTERN, RESERVED_DEVICE_IDS

DeviceKind = Literal[
    "gateway",
    "emergency_button",
    "vital_monitor",
    "motion_sensor",
    "door_sensor",
    "bed_sensor",
    "fall_sensor",
    "smoke_alarm",
]


DeviceStatus = Literal["active", "retired"]


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    device_id: str = Field(pattern=DEVICE_ID_PATTERN, examples=["gw-0001"])
    gateway_id: str | None = Field(
        None,
        pattern=DEVICE_ID_PATTERN,
        description="the gateway this device reports through; a gateway names itself",
    )
    kind: DeviceKind
    elder_id: uuid.UUID
    bed_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _gateway(self) -> DeviceCreate:
        if self.device_id.lower() in RESERVED_DEVICE_IDS:
            raise ValueError(
                T(
                    f"设备编号 {self.device_id!r} 保留给平台服务使用",
                    f"device_id {self.device_id!r} is reserved for a platform service",
                )
            )
        if self.kind == "gateway":
            if self.gateway_id not in (None, self.device_id):
                raise ValueError(
                    T(
                        "网关的 gateway_id 就是它自己的 device_id",
                        "a gateway's gateway_id is its own device_id",
                    )
                )
            self.gateway_id = self.device_id
        elif self.gateway_id is None:
            raise ValueError(
                T(
                    "设备须注明它通过哪个网关上报",
                    "a device must name the gateway it reports through",
                )
            )
        return self


class MqttCredentials(BaseModel):
    """Shown once, at registration. The broker ACL allows publishing under ``topic_prefix``."""

    client_id: str
    username: str
    password: str
    topic_prefix: str
    status_topic: str


class DeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    device_id: str
    gateway_id: str
    kind: DeviceKind
    elder_id: uuid.UUID
    bed_id: uuid.UUID | None
    status: DeviceStatus
    created_at: datetime
    retired_at: datetime | None = None
    retired_by: str | None = None
    mqtt: MqttCredentials | None = None


RetireReason = Literal["returned", "faulty", "replaced", "service_ended", "deceased", "other"]


class DeviceRetire(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: RetireReason = Field("other", description="recorded in the audit log")


class DeviceRetired(DeviceRead):
    also_retired: list[str] = Field(
        default_factory=list,
        description="a gateway takes the devices behind it along: their device ids",
    )
