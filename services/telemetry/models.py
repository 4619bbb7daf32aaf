"""Every telemetry table (for Alembic)."""

from services.telemetry.alerts.models import (
    Alert,
    AlertLog,
    ElderSettings,
    VisitMode,
    VitalBreach,
)
from services.telemetry.events.models import DeadLetter, DeviceState, Event, Gateway, Seen
from services.telemetry.outbox.models import OutboxMessage

__all__ = [
    "Alert",
    "AlertLog",
    "DeadLetter",
    "DeviceState",
    "ElderSettings",
    "Event",
    "Gateway",
    "OutboxMessage",
    "Seen",
    "VisitMode",
    "VitalBreach",
]
