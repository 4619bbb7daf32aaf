"""Every telemetry table (for Alembic)."""

from services.telemetry.alerts.models import Alert, AlertLog, VitalBreach
from services.telemetry.deadletters.models import DeadLetter
from services.telemetry.events.models import Event, Seen
from services.telemetry.gateways.models import DeviceState, Gateway
from services.telemetry.ingest.models import IngestHealth
from services.telemetry.monitoring.models import ElderSettings, VisitMode
from services.telemetry.outbox.models import OutboxMessage

__all__ = [
    "Alert",
    "AlertLog",
    "DeadLetter",
    "DeviceState",
    "ElderSettings",
    "Event",
    "Gateway",
    "IngestHealth",
    "OutboxMessage",
    "Seen",
    "VisitMode",
    "VitalBreach",
]
