"""outbox notify: on PostgreSQL, a committed outbox message wakes the worker (NOTIFY)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 09:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel is app.webhooks.wakeup.CHANNEL. NOTIFY is sent when the transaction commits, once
# however many messages it added, and never for one that rolls back.
POSTGRES_FUNCTION = """
CREATE FUNCTION outbox_message_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('haven_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: the worker polls
    op.execute(POSTGRES_FUNCTION)
    op.execute(
        "CREATE TRIGGER outbox_message_notify AFTER INSERT ON outbox_message "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_message_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_message_notify ON outbox_message")
    op.execute("DROP FUNCTION IF EXISTS outbox_message_notify()")
