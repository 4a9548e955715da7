"""incident status counts: kept by triggers, so the queue does not count every incident

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 19:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# pg_advisory_xact_lock(4871749) below is the audit chain's advisory lock (0x4A5645,
# app.audit.service._CHAIN_LOCK_KEY). Every transaction that changes a count takes it first, so
# two writers never wait for each other's count rows in opposite orders: writes to incidents
# append to the audit trail, and so take it anyway.
POSTGRES_FUNCTION = """
CREATE FUNCTION incident_status_count_follow() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.school_id = OLD.school_id THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(4871749);
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE incident_status_count SET count = count - 1
         WHERE school_id = OLD.school_id AND status = OLD.status;
        DELETE FROM incident_status_count
         WHERE school_id = OLD.school_id AND status = OLD.status AND count <= 0;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO incident_status_count (school_id, status, count)
        VALUES (NEW.school_id, NEW.status, 1)
        ON CONFLICT (school_id, status) DO UPDATE SET count = incident_status_count.count + 1;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

SQLITE_LEAVE = """
    UPDATE incident_status_count SET count = count - 1
     WHERE school_id = OLD.school_id AND status = OLD.status;
    DELETE FROM incident_status_count
     WHERE school_id = OLD.school_id AND status = OLD.status AND count <= 0;
"""
SQLITE_ENTER = """
    INSERT INTO incident_status_count (school_id, status, count)
    VALUES (NEW.school_id, NEW.status, 1)
    ON CONFLICT (school_id, status) DO UPDATE SET count = count + 1;
"""
SQLITE_TRIGGERS = {
    "incident_status_count_insert": f"AFTER INSERT ON incident BEGIN {SQLITE_ENTER} END",
    "incident_status_count_update": (
        "AFTER UPDATE OF status, school_id ON incident "
        "WHEN NEW.status IS NOT OLD.status OR NEW.school_id IS NOT OLD.school_id "
        f"BEGIN {SQLITE_LEAVE} {SQLITE_ENTER} END"
    ),
    "incident_status_count_delete": f"AFTER DELETE ON incident BEGIN {SQLITE_LEAVE} END",
}


def upgrade() -> None:
    op.create_table(
        "incident_status_count",
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "in_progress",
                "escalated",
                "resolved",
                "closed",
                name="incidentstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"], ["school.id"], name=op.f("fk_incident_status_count_school_id_school")
        ),
        sa.PrimaryKeyConstraint("school_id", "status", name=op.f("pk_incident_status_count")),
    )
    op.execute(
        "INSERT INTO incident_status_count (school_id, status, count) "
        "SELECT school_id, status, count(*) FROM incident GROUP BY school_id, status"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(
            "CREATE TRIGGER incident_status_count_follow "
            "AFTER INSERT OR UPDATE OF status, school_id OR DELETE ON incident "
            "FOR EACH ROW EXECUTE FUNCTION incident_status_count_follow()"
        )
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS incident_status_count_follow ON incident")
        op.execute("DROP FUNCTION IF EXISTS incident_status_count_follow()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("incident_status_count")
