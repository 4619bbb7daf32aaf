"""The registry's published read model: the columns other services may read, as Core tables.

DESIGN.md: a service writes only its own schema, and reads another's through read-only SQL
where a join is the natural answer. These tables are that contract — just the columns
telemetry, dispatch and subsidy may use, on a ``MetaData`` of their own (Alembic and the
registry's ORM never see them). ``tests/unit/test_readmodel.py`` checks every column here
against the registry's own models, so the two cannot drift apart.

Encrypted PII (ID numbers, phones) is deliberately absent: whoever needs it in clear asks
the registry's API, which audits the read.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    MetaData,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData(schema="registry")


def _uuid(name: str, **kw) -> Column:
    return Column(name, UUID(as_uuid=True), **kw)


elders = Table(
    "elders",
    metadata,
    _uuid("id", primary_key=True),
    Column("name", String(64)),
    Column("birth_date", Date),
    Column("gender", String(8)),
    Column("hukou_region", String(12)),
    Column("residence_region", String(12)),
    Column("address", String(256)),
    Column("lat", Float),
    Column("lon", Float),
    Column("zone", String(8)),
    Column("living_arrangement", String(32)),
    Column("lives_at_home", Boolean),
    Column("deceased_on", Date),
    Column("current_level", SmallInteger),
    Column("reassessment_due_on", Date),
    _uuid("registered_by_org"),
    Column("created_at", DateTime(timezone=True)),
)

# Where an elder was from which day (a row holds until the next one; the first, `registered`,
# from birth). Subsidy reads it to count each day at the place in force that day.
residence_history = Table(
    "residence_history",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("elder_id"),
    Column("hukou_region", String(12)),
    Column("residence_region", String(12)),
    Column("valid_from", Date),
    Column("kind", String(16)),  # registered | move
)

beds = Table(
    "beds",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("elder_id"),
    _uuid("org_id"),
    _uuid("station_id"),
    Column("status", String(16)),
    Column("policy_code", String(64)),
    Column("applied_on", Date),
    Column("started_on", Date),
    Column("suspended_on", Date),
    Column("terminated_on", Date),
    Column("created_at", DateTime(timezone=True)),
)

bed_events = Table(
    "bed_events",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("bed_id"),
    Column("from_status", String(16)),
    Column("to_status", String(16)),
    Column("effective_on", Date),
    Column("created_at", DateTime(timezone=True)),
)

modifications = Table(
    "modifications",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("bed_id"),
    Column("kind", String(32)),
    Column("item", String(128)),
    Column("cost_fen", BigInteger),
    Column("done_on", Date),
)

assessments = Table(
    "assessments",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("elder_id"),
    Column("level", SmallInteger),
    Column("dementia", Boolean),
    Column("assessed_on", Date),
    Column("valid_until", Date),
    Column("created_at", DateTime(timezone=True)),
)

categories = Table(
    "categories",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("elder_id"),
    Column("code", String(32)),
    Column("valid_from", Date),
    Column("valid_to", Date),
    Column("grade", SmallInteger),
    Column("receives_nursing_subsidy", Boolean),
)

family_caregivers = Table(
    "family_caregivers",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("elder_id"),
    Column("name", String(64)),
    Column("relation", String(32)),
    Column("phone_masked", String(20)),
    Column("lives_with", Boolean),
    Column("trained_on", Date),
    Column("active", Boolean),
)

orgs = Table(
    "orgs",
    metadata,
    _uuid("id", primary_key=True),
    Column("name", String(128)),
    Column("region", String(12)),
    Column("medical_license", String(64)),
    Column("medical_license_valid_until", Date),
)

stations = Table(
    "stations",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("org_id"),
    Column("name", String(128)),
    Column("region", String(12)),
    Column("lat", Float),
    Column("lon", Float),
    Column("zone", String(8)),
)

staff = Table(
    "staff",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("org_id"),
    _uuid("station_id"),
    Column("name", String(64)),
    Column("role", String(32)),
    Column("phone_masked", String(20)),
    Column("certificates", JSONB),
    Column("insured_until", Date),
    Column("on_duty", Boolean),
    Column("active", Boolean),
)

devices = Table(
    "devices",
    metadata,
    _uuid("id", primary_key=True),
    Column("device_id", String(64)),
    Column("gateway_id", String(64)),
    Column("kind", String(32)),
    _uuid("elder_id"),
    _uuid("bed_id"),
    Column("status", String(16)),  # active | retired
    Column("retired_at", DateTime(timezone=True)),
    # gateways only: what the broker's password file is generated from (never a password)
    Column("mqtt_username", String(64)),
    Column("mqtt_password_hash", String(256)),
)
