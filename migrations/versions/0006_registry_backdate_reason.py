"""registry: the reason a bed's start date was recorded far in the past

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-01 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "beds",
        sa.Column("backdate_reason", sa.String(length=256), nullable=True),
        schema="registry",
    )


def downgrade() -> None:
    op.drop_column("beds", "backdate_reason", schema="registry")
