"""first action at: the time of an incident's first action is kept on the incident

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# app.incidents.models.FIRST_ACTION_KINDS when this was written: entries a signed-in person made.
KINDS = (
    "note",
    "decision",
    "contact",
    "playbook_step",
    "status_change",
    "assignment",
    "removal",
    "harm_test",
)
incident = sa.table("incident", sa.column("id"), sa.column("first_action_at"))
entry = sa.table(
    "timeline_entry",
    sa.column("incident_id"),
    sa.column("actor_user_id"),
    sa.column("kind"),
    sa.column("created_at"),
)
ACTIONS = sa.and_(
    entry.c.incident_id == incident.c.id,
    entry.c.actor_user_id.is_not(None),
    entry.c.kind.in_(KINDS),
)


def upgrade() -> None:
    # Not batch mode: rebuilding the table on SQLite would drop its triggers.
    op.add_column(
        "incident",
        sa.Column("first_action_at", app.core.types.UTCDateTime(timezone=True), nullable=True),
    )
    first = sa.select(sa.func.min(entry.c.created_at)).where(ACTIONS).scalar_subquery()
    op.execute(
        incident.update()
        .values(first_action_at=first)
        .where(sa.exists(sa.select(1).select_from(entry).where(ACTIONS)))
    )


def downgrade() -> None:
    op.drop_column("incident", "first_action_at")
