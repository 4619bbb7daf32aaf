"""Every registry table, imported in dependency order (for Alembic and create_all)."""

from services.registry.assessments.models import Assessment
from services.registry.beds.models import Bed, BedEvent, Modification
from services.registry.caregivers.models import FamilyCaregiver
from services.registry.categories.models import Category
from services.registry.devices.models import Device
from services.registry.elders.models import Elder
from services.registry.elders.moves.models import ResidenceRecord
from services.registry.orgs.models import Org, Staff, Station

__all__ = [
    "Assessment",
    "Bed",
    "BedEvent",
    "Category",
    "Device",
    "Elder",
    "FamilyCaregiver",
    "Modification",
    "Org",
    "ResidenceRecord",
    "Staff",
    "Station",
]
