"""incident status changes: the queue's counts as a log of +1/-1 rows that writers only append
to, so concurrent reports never wait for one another's count row; the worker folds the log

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 08:00:00.000000+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("open", "in_progress", "escalated", "resolved", "closed")

POSTGRES_FUNCTION = """
CREATE FUNCTION incident_status_change_follow() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.school_id = OLD.school_id THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO incident_status_change (school_id, status, change)
        VALUES (OLD.school_id, OLD.status, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO incident_status_change (school_id, status, change)
        VALUES (NEW.school_id, NEW.status, 1);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

SQLITE_LEAVE = (
    "INSERT INTO incident_status_change (school_id, status, change) "
    "VALUES (OLD.school_id, OLD.status, -1);"
)
SQLITE_ENTER = (
    "INSERT INTO incident_status_change (school_id, status, change) "
    "VALUES (NEW.school_id, NEW.status, 1);"
)
SQLITE_TRIGGERS = {
    "incident_status_change_insert": f"AFTER INSERT ON incident BEGIN {SQLITE_ENTER} END",
    "incident_status_change_update": (
        "AFTER UPDATE OF status, school_id ON incident "
        "WHEN NEW.status IS NOT OLD.status OR NEW.school_id IS NOT OLD.school_id "
        f"BEGIN {SQLITE_LEAVE} {SQLITE_ENTER} END"
    ),
    "incident_status_change_delete": f"AFTER DELETE ON incident BEGIN {SQLITE_LEAVE} END",
}


def _revision_0011():
    """Migration 0011, whose table and triggers the downgrade puts back."""
    path = next(Path(__file__).parent.glob("*-0011_*.py"))
    spec = importlib.util.spec_from_file_location("haven_migration_0011", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS incident_status_count_follow ON incident")
        op.execute("DROP FUNCTION IF EXISTS incident_status_count_follow()")
    else:
        for name in _revision_0011().SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("incident_status_count")
    op.create_table(
        "incident_status_change",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(*STATUSES, name="incidentstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("change", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"], ["school.id"], name=op.f("fk_incident_status_change_school_id_school")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_status_change")),
    )
    op.create_index(
        "ix_incident_status_change_school_id_status_change",
        "incident_status_change",
        ["school_id", "status", "change"],
    )
    op.execute(
        "INSERT INTO incident_status_change (school_id, status, change) "
        "SELECT school_id, status, count(*) FROM incident GROUP BY school_id, status"
    )
    if postgres:
        op.execute(POSTGRES_FUNCTION)
        op.execute(
            "CREATE TRIGGER incident_status_change_follow "
            "AFTER INSERT OR UPDATE OF status, school_id OR DELETE ON incident "
            "FOR EACH ROW EXECUTE FUNCTION incident_status_change_follow()"
        )
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS incident_status_change_follow ON incident")
        op.execute("DROP FUNCTION IF EXISTS incident_status_change_follow()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_incident_status_change_school_id_status_change", "incident_status_change")
    op.drop_table("incident_status_change")
    _revision_0011().upgrade()  # the count table, filled from the incidents, and its triggers
