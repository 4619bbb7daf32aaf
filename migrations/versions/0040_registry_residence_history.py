"""registry: dated history of each elder's hukou and residence (moves)

Revision ID: 0040
Revises: 0060
Create Date: 2027-01-10 10:00:00+00:00

An elder who moves away mid-month is paid by day for the days at each place, so the
registry keeps where the elder was from which day (``registry.residence_history``); the
elder's own columns stay the row in force today. Existing elders get their first row,
``registered``, from their current columns, in force from their birth date (nothing earlier
is known about them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0040"
down_revision: str | None = "0060"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "residence_history",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("elder_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("hukou_region", sa.String(length=12), nullable=False),
        sa.Column("residence_region", sa.String(length=12), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["elder_id"],
            ["registry.elders.id"],
            name=op.f("fk_residence_history_elder_id_elders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_residence_history")),
        sa.UniqueConstraint("elder_id", "valid_from", name="uq_residence_history_elder_day"),
        sa.CheckConstraint(
            "kind IN ('registered', 'move')", name=op.f("ck_residence_history_kind")
        ),
        schema="registry",
    )
    op.create_index(
        "ix_residence_history_moves",
        "residence_history",
        ["valid_from"],
        schema="registry",
        postgresql_where=sa.text("kind = 'move'"),
    )
    # Backfill: one `registered` row per existing elder. Time-ordered ids are not needed for
    # these (they sort by valid_from first, and no client has a cursor into them yet).
    op.execute(
        "INSERT INTO registry.residence_history (id, elder_id, hukou_region, residence_region,"
        " valid_from, kind, recorded_by)"
        " SELECT gen_random_uuid(), id, hukou_region, residence_region, birth_date,"
        " 'registered', 'migration 0040' FROM registry.elders"
    )


def downgrade() -> None:
    op.drop_index("ix_residence_history_moves", table_name="residence_history", schema="registry")
    op.drop_table("residence_history", schema="registry")
