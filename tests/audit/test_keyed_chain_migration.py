"""Migration 0017: an existing chain (plain SHA-256) is checked, then keyed with the secret key."""

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from app.audit.models import AuditEvent
from app.audit.service import verify_chain
from app.core.migrations import current_revision, downgrade, upgrade
from tests.conftest import TEST_SECRET
from tests.factories import make_incident, make_user

PLAIN = "was rewritten without the key (its hash is a plain SHA-256)"


def _chain_as_0016_wrote_it(engine) -> int:
    """Real events (an account, a report and its chronology), in a database at revision 0016,
    chained as Haven chained them then."""
    with Session(engine) as session:
        make_incident(session, reporter=make_user(session))
        count = len(session.exec(select(AuditEvent)).all())
    downgrade(engine, "0016", secret_key=TEST_SECRET)
    with Session(engine) as session:
        checked, problems = verify_chain(session=session, secret_key=TEST_SECRET)
    assert checked == count > 1
    assert {(p.seq, p.reason) for p in problems} == {(seq, PLAIN) for seq in range(1, count + 1)}
    return count


def test_the_migration_keys_an_existing_chain(committed_engine):
    count = _chain_as_0016_wrote_it(committed_engine)
    upgrade(committed_engine, "head", secret_key=TEST_SECRET)
    with Session(committed_engine) as session:
        assert verify_chain(session=session) == (count, [])
        assert verify_chain(session=session, secret_key="x" * 48)[1]  # keyed: another key fails


def test_the_migration_refuses_to_key_a_chain_that_is_already_broken(committed_engine):
    _chain_as_0016_wrote_it(committed_engine)
    with committed_engine.begin() as connection:  # an edit, with the trigger put back after
        if connection.dialect.name == "postgresql":
            lift = "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"
            restore = "ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"
        else:
            lift = "DROP TRIGGER audit_event_no_update"
            restore = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'audit_event_no_update'"
            ).scalar()
        connection.exec_driver_sql(lift)
        connection.exec_driver_sql("UPDATE audit_event SET action = 'edited' WHERE seq = 2")
        connection.exec_driver_sql(restore)
        before = connection.execute(sa.text("SELECT seq, hash FROM audit_event")).all()
    with pytest.raises(RuntimeError, match=r"already broken at event 2 \(it was changed after"):
        upgrade(committed_engine, "head", secret_key=TEST_SECRET)
    with committed_engine.connect() as connection:
        assert current_revision(connection) == "0016"
        assert connection.execute(sa.text("SELECT seq, hash FROM audit_event")).all() == before
