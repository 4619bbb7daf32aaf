"""Every dispatch table, imported in dependency order (for Alembic and the tests)."""

from services.dispatch.catalogue.models import ServiceCategory, ServiceItem
from services.dispatch.chains.models import OrgSettings
from services.dispatch.dispatches.models import Dispatch, DispatchStep
from services.dispatch.notifications.models import Notification
from services.dispatch.outbox.models import OutboxMessage
from services.dispatch.plans.models import Plan
from services.dispatch.visits.models import Visit, VisitFlag

__all__ = [
    "Dispatch",
    "DispatchStep",
    "Notification",
    "OrgSettings",
    "OutboxMessage",
    "Plan",
    "ServiceCategory",
    "ServiceItem",
    "Visit",
    "VisitFlag",
]
