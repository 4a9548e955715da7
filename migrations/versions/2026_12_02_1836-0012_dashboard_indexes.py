"""dashboard indexes: open incidents by severity, incidents closed in a period, each incident's
first action, escalations by rule in a period

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 18:36:39.602219+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_incident_school_id_status_severity": ("incident", ["school_id", "status", "severity"]),
    "ix_incident_school_id_closed_at": ("incident", ["school_id", "closed_at"]),
    "ix_timeline_entry_incident_id_created_at": ("timeline_entry", ["incident_id", "created_at"]),
    "ix_escalation_rule_id_created_at": ("escalation", ["rule_id", "created_at"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
