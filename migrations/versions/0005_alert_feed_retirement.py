"""alert feed position, finite escalation, device retirement

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01 10:00:00+00:00

- ``alert_log.xid``: the writing transaction (xid8). The SSE feed orders by ``(xid, seq)``
  and serves only rows below the oldest running transaction, so a late commit never lands
  behind a client's position. Rows written before this migration get xid 0: they keep
  their ``seq`` order and come before everything new, so an old numeric Last-Event-ID
  still resumes where it was.
- ``alert_log.detail``: what an escalation step re-notified.
- ``alerts.escalation_exhausted_at``: the chain's last step was taken.
- ``registry.devices.retired_at``/``retired_by``: retirement (the row and its id stay).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default fills existing rows without rewriting the table; new rows then
    # take their transaction's id.
    op.execute("ALTER TABLE telemetry.alert_log ADD COLUMN xid xid8 NOT NULL DEFAULT '0'")
    op.execute("ALTER TABLE telemetry.alert_log ALTER COLUMN xid SET DEFAULT pg_current_xact_id()")
    op.add_column(
        "alert_log",
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        schema="telemetry",
    )
    op.create_index("ix_alert_log_xid_seq", "alert_log", ["xid", "seq"], schema="telemetry")
    op.create_index("ix_alert_log_at", "alert_log", ["at"], schema="telemetry")
    op.add_column(
        "alerts",
        sa.Column("escalation_exhausted_at", sa.DateTime(timezone=True), nullable=True),
        schema="telemetry",
    )
    op.create_index(
        "ix_alerts_dedup_first_event",
        "alerts",
        ["dedup_key", "first_event_at"],
        schema="telemetry",
    )
    op.add_column(
        "devices",
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        schema="registry",
    )
    op.add_column(
        "devices", sa.Column("retired_by", sa.String(length=128), nullable=True), schema="registry"
    )


def downgrade() -> None:
    op.drop_column("devices", "retired_by", schema="registry")
    op.drop_column("devices", "retired_at", schema="registry")
    op.drop_index("ix_alerts_dedup_first_event", table_name="alerts", schema="telemetry")
    op.drop_column("alerts", "escalation_exhausted_at", schema="telemetry")
    op.drop_index("ix_alert_log_at", table_name="alert_log", schema="telemetry")
    op.drop_index("ix_alert_log_xid_seq", table_name="alert_log", schema="telemetry")
    op.drop_column("alert_log", "detail", schema="telemetry")
    op.drop_column("alert_log", "xid", schema="telemetry")
