"""alert feed: stream positions assigned at commit by one sequencer

Revision ID: 0030
Revises: 0011
Create Date: 2026-12-01 14:00:00+00:00

The feed used to serve only rows below ``pg_snapshot_xmin`` — the oldest transaction
running anywhere in the cluster — so one long or forgotten transaction (a subsidy run, an
idle psql session) froze every live alert stream until it ended. Now each row's stream
position ``pos`` is taken when its transaction commits, under one transaction-scoped
advisory lock held to the end of the commit: positions are handed out in commit order, so a
reader that sees position n sees everything below it, whatever else is running. A deferred
constraint trigger does it, so every writer (ingest, monitor, desk, relay) gets it without
a change, and a rolled-back transaction takes nothing but a number.

Rows already in the log get ``pos = seq``: a bare numeric Last-Event-ID from before the
xid column then still means what it meant, and the sequence starts above them.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0030"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE telemetry.alert_log_pos_seq AS bigint")
    op.execute("ALTER TABLE telemetry.alert_log ADD COLUMN pos bigint")
    op.execute("UPDATE telemetry.alert_log SET pos = seq")
    op.execute(
        "SELECT setval('telemetry.alert_log_pos_seq', "
        "(SELECT coalesce(max(seq), 0) + 1 FROM telemetry.alert_log), false)"
    )
    op.execute("CREATE UNIQUE INDEX ix_alert_log_pos ON telemetry.alert_log (pos)")
    op.execute(
        """
        CREATE FUNCTION telemetry.alert_log_sequence() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            -- Runs at commit (deferred); the lock is held until the commit is visible, so the
            -- next transaction's positions are all above this one's.
            PERFORM pg_advisory_xact_lock(hashtextextended('telemetry.alert_log.pos', 0));
            UPDATE telemetry.alert_log SET pos = nextval('telemetry.alert_log_pos_seq')
             WHERE seq = NEW.seq AND pos IS NULL;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER alert_log_sequence AFTER INSERT ON telemetry.alert_log "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        "EXECUTE FUNCTION telemetry.alert_log_sequence()"
    )
    # Also under session_replication_role = replica (a restore, logical replication): a row
    # that never got a position would never be served.
    op.execute("ALTER TABLE telemetry.alert_log ENABLE ALWAYS TRIGGER alert_log_sequence")


def downgrade() -> None:
    op.execute("DROP TRIGGER alert_log_sequence ON telemetry.alert_log")
    op.execute("DROP FUNCTION telemetry.alert_log_sequence()")
    op.execute("DROP INDEX telemetry.ix_alert_log_pos")
    op.execute("ALTER TABLE telemetry.alert_log DROP COLUMN pos")
    op.execute("DROP SEQUENCE telemetry.alert_log_pos_seq")
