"""dispatch: a caregiver's EVV fixes by time

Revision ID: 0011
Revises: 0005
Create Date: 2026-12-01 12:00:00+00:00

The hand-off ranks responders from where each was last seen (their latest check-in or
check-out since the morning), and a check-in looks up the caregiver's previous check-out:
both read one caregiver's visits by the time of a fix. ``(staff_id, planned_start)`` does
not order by it, so after a year of visits every hand-off scanned each responder's history.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_visits_staff_check_in",
        "visits",
        ["staff_id", "check_in_at"],
        schema="dispatch",
        postgresql_where="check_in_at IS NOT NULL",
    )
    op.create_index(
        "ix_visits_staff_check_out",
        "visits",
        ["staff_id", "check_out_at"],
        schema="dispatch",
        postgresql_where="check_out_at IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_index("ix_visits_staff_check_out", table_name="visits", schema="dispatch")
    op.drop_index("ix_visits_staff_check_in", table_name="visits", schema="dispatch")
