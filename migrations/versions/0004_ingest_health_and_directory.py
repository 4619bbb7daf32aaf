"""ingest health, device directory notifications, longer dead-letter reasons

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:00:00.000000+00:00

- ``telemetry.ingest_health``: one row per ingest process, so the telemetry API's
  ``/readyz`` can say "ingest is failing to store" (services/telemetry/ingest/health.py).
- A trigger on ``registry.devices`` that NOTIFYs ``registry_devices`` with the device id on
  every insert, update and delete (``*`` on truncate): the ingest's device directory drops
  what changed the moment the registration commits (services/telemetry/ingest/directory.py).
  It lives in the telemetry schema — it is telemetry's cache being told — and writes nothing.
- ``dead_letters.reason`` takes 64 characters (``event_not_allowed_for_device_kind`` is 33).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFY_ROW = """
CREATE OR REPLACE FUNCTION telemetry.notify_device_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('registry_devices', OLD.device_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.device_id IS DISTINCT FROM OLD.device_id)
    THEN
        PERFORM pg_notify('registry_devices', NEW.device_id);
    END IF;
    RETURN NULL;
END $$;
"""

NOTIFY_ALL = """
CREATE OR REPLACE FUNCTION telemetry.notify_devices_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('registry_devices', '*');
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "ingest_health",
        sa.Column("worker", sa.String(length=160), nullable=False),
        sa.Column("storing", sa.Boolean(), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_ingest_health")),
        schema="telemetry",
    )
    op.alter_column(
        "dead_letters",
        "reason",
        existing_type=sa.String(length=32),
        type_=sa.String(length=64),
        existing_nullable=False,
        schema="telemetry",
    )
    op.execute(NOTIFY_ROW)
    op.execute(NOTIFY_ALL)
    op.execute(
        "CREATE TRIGGER devices_notify_directory AFTER INSERT OR UPDATE OR DELETE "
        "ON registry.devices FOR EACH ROW EXECUTE FUNCTION telemetry.notify_device_change()"
    )
    op.execute(
        "CREATE TRIGGER devices_truncate_notify_directory AFTER TRUNCATE "
        "ON registry.devices FOR EACH STATEMENT "
        "EXECUTE FUNCTION telemetry.notify_devices_truncated()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS devices_truncate_notify_directory ON registry.devices")
    op.execute("DROP TRIGGER IF EXISTS devices_notify_directory ON registry.devices")
    op.execute("DROP FUNCTION IF EXISTS telemetry.notify_devices_truncated()")
    op.execute("DROP FUNCTION IF EXISTS telemetry.notify_device_change()")
    op.alter_column(
        "dead_letters",
        "reason",
        existing_type=sa.String(length=64),
        type_=sa.String(length=32),
        existing_nullable=False,
        schema="telemetry",
    )
    op.drop_table("ingest_health", schema="telemetry")
