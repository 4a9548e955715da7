"""What someone able to bypass the database's triggers could do to the audit trail."""

import sqlalchemy as sa
from sqlmodel import Session


def delete_newest_events(session: Session, *, after: int) -> None:
    """Delete the events after `after`: on PostgreSQL with triggers off for the transaction
    (session_replication_role), on SQLite by dropping the trigger."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(sa.text("SET LOCAL session_replication_role = replica"))
    else:
        session.execute(sa.text("DROP TRIGGER audit_event_no_delete"))
    session.execute(sa.text("DELETE FROM audit_event WHERE seq > :after"), {"after": after})
    if postgres:
        session.execute(sa.text("SET LOCAL session_replication_role = origin"))
    session.expire_all()
