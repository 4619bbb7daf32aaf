"""Dispatch's published read model: verified home visits, one row per visit id, and the
columns of a visit others may read (who is in which home now).

Subsidy redeems service vouchers against these rows and settles with organisations from
them (000 篇七: quarterly settlement from verified service records). Dispatch owns the view
``dispatch.verified_visits`` and guarantees its columns (``tests`` check it); a row appears
once a visit is checked out and no anomaly flag on it is still open — a visit excluded from
compliance is never payable.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table
from sqlalchemy.dialects.postgresql import ARRAY, UUID

metadata = MetaData(schema="dispatch")

verified_visits = Table(
    "verified_visits",
    metadata,
    Column("visit_id", UUID(as_uuid=True), primary_key=True),
    Column("bed_id", UUID(as_uuid=True)),
    Column("elder_id", UUID(as_uuid=True)),
    Column("org_id", UUID(as_uuid=True)),
    Column("staff_id", UUID(as_uuid=True)),
    Column("service_day", Date),  # the day in Asia/Shanghai the visit began
    Column("started_at", DateTime(timezone=True)),  # check-in (handset time)
    Column("ended_at", DateTime(timezone=True)),  # check-out (handset time)
    Column("minutes", Integer),  # ended_at − started_at, whole minutes
    Column("item_codes", ARRAY(String(32))),  # service catalogue codes delivered
    Column("verified_at", DateTime(timezone=True)),  # when it became payable
)


# The visits themselves, just what others may read: telemetry's VISIT mode lets a caregiver
# pause behaviour alerts only for an elder with a visit of theirs checked in now.
visits = Table(
    "visits",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("elder_id", UUID(as_uuid=True)),
    Column("org_id", UUID(as_uuid=True)),
    Column("staff_id", UUID(as_uuid=True)),
    Column("status", String(16)),
    Column("check_in_at", DateTime(timezone=True)),
)
