"""telemetry visit mode

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 16:03:45.810904+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visit_mode",
        sa.Column("elder_id", sa.UUID(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("staff_id", sa.UUID(), nullable=True),
        sa.Column("visit_ref", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("elder_id", name=op.f("pk_visit_mode")),
        schema="telemetry",
    )


def downgrade() -> None:
    op.drop_table("visit_mode", schema="telemetry")
