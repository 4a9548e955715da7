"""The audit trail: written with the change it records, append-only, and tamper-evident."""

import hashlib

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from app.audit.models import AuditEvent
from app.audit.service import (
    SYSTEM,
    Actor,
    UnkeyedChain,
    _canonical,
    record_event,
    verify_chain,
)
from app.auth.models import User
from app.core.db import make_engine
from app.core.keys import AUDIT_CHAIN, keyed_hash
from tests.conftest import TEST_SECRET
from tests.factories import make_incident, make_school, make_user


def _events(db):
    return db.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()


def test_events_form_a_verifiable_chain(db):
    school = make_school(db)
    for n in range(3):
        record_event(
            session=db, actor=SYSTEM, action="test.event", school_id=school.id, entity_id=n
        )
    db.commit()
    checked, problems = verify_chain(session=db, batch_size=2)
    assert checked == 3 and problems == []
    events = _events(db)
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[1].prev_hash == events[0].hash


def test_an_event_rolls_back_with_the_change_it_records(db):
    school = make_school(db)
    db.commit()
    nested = db.begin_nested()
    db.add(
        User(
            school_id=school.id,
            email="gone@school.example",
            display_name="Gone",
            role="staff",
            password_hash="x",
        )
    )
    record_event(session=db, actor=SYSTEM, action="user.created", school_id=school.id)
    nested.rollback()
    record_event(session=db, actor=SYSTEM, action="school.viewed", school_id=school.id)
    db.commit()
    assert db.exec(select(User).where(User.email == "gone@school.example")).first() is None
    assert [e.action for e in _events(db)] == ["school.viewed"]
    assert verify_chain(session=db) == (1, [])


def test_events_of_concurrent_transactions_join_the_chain_in_commit_order(committed_engine):
    engine = committed_engine
    with Session(engine) as first, Session(engine) as second:
        record_event(session=first, actor=SYSTEM, action="first.recorded", school_id=None)
        record_event(session=second, actor=SYSTEM, action="second.recorded", school_id=None)
        second.commit()
        first.commit()
    with Session(engine) as session:
        assert [e.action for e in _events(session)] == ["second.recorded", "first.recorded"]
        assert verify_chain(session=session) == (2, [])


def _disable_append_only(db):
    if db.get_bind().dialect.name == "postgresql":
        db.execute(sa.text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
    else:
        db.execute(sa.text("DROP TRIGGER audit_event_no_update"))
        db.execute(sa.text("DROP TRIGGER audit_event_no_delete"))


def test_the_database_refuses_to_edit_or_delete_events(db):
    make_user(db)
    for statement in ["UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"]:
        savepoint = db.begin_nested()
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            db.execute(sa.text(statement))
        savepoint.rollback()


# The tables whose rows are never changed, and removed (if ever) one reviewed record at a time.
REFUSED = {
    "audit_event": "append-only",
    "timeline_entry": "deleted only with their incident",
    "incident": "deleted only after a retention review",
}


@pytest.mark.parametrize("table", REFUSED)
def test_the_database_refuses_to_empty_an_append_only_table(db, backend, table):
    """TRUNCATE on PostgreSQL (with CASCADE, which would also empty every table referring to
    it); on SQLite, which has no TRUNCATE, DELETE of every row, which its row triggers refuse."""
    make_incident(db)
    statements = (
        [f"TRUNCATE {table} CASCADE"] if backend == "postgresql" else [f"DELETE FROM {table}"]  # noqa: S608 - a table name from REFUSED
    )
    for statement in statements:
        savepoint = db.begin_nested()
        with pytest.raises(sa.exc.DBAPIError, match=REFUSED[table]):
            db.execute(sa.text(statement))
        savepoint.rollback()
    assert db.scalar(sa.text(f"SELECT count(*) FROM {table}")) > 0  # noqa: S608


def test_each_hash_is_keyed_with_the_secret_key(db):
    make_user(db)
    (event,) = _events(db)
    assert event.hash == keyed_hash(TEST_SECRET, AUDIT_CHAIN, _canonical(event))
    assert event.hash != hashlib.sha256(_canonical(event)).hexdigest()
    assert verify_chain(session=db) == (1, [])
    _, problems = verify_chain(session=db, secret_key="another-key-" + TEST_SECRET)
    assert [p.reason for p in problems] == ["was changed after it was written"]


def test_an_engine_without_the_key_writes_no_event(scratch_database):
    from app.core.migrations import upgrade_to_head

    engine = make_engine(scratch_database())
    upgrade_to_head(engine)
    with Session(engine) as session:
        record_event(session=session, actor=SYSTEM, action="test.event", school_id=None)
        with pytest.raises(UnkeyedChain, match="HAVEN_SECRET_KEY"):
            session.commit()
    with Session(engine) as session:
        assert session.exec(select(AuditEvent)).all() == []
    engine.dispose()


def _tamper(db, statement: str) -> None:
    """Three events, then `statement` run past the triggers."""
    for _ in range(3):
        make_user(db)
    _disable_append_only(db)
    db.execute(sa.text(statement))
    db.expire_all()


def _plain_sha256(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


def test_an_event_rewritten_with_a_recomputed_plain_chain_is_detected(db):
    """Without the key, an edit cannot be hidden by recomputing the hashes after it."""
    _tamper(db, "UPDATE audit_event SET entity_id = '999' WHERE seq = 2")
    prev_hash = _events(db)[0].hash
    for event in _events(db)[1:]:
        event.prev_hash = prev_hash
        event.hash = prev_hash = _plain_sha256(event)
        db.execute(
            sa.text("UPDATE audit_event SET prev_hash = :p, hash = :h WHERE id = :id"),
            {"p": event.prev_hash, "h": event.hash, "id": event.id},
        )
    db.expire_all()
    _, problems = verify_chain(session=db)
    assert [(p.seq, p.reason) for p in problems] == [
        (2, "was rewritten without the key (its hash is a plain SHA-256)"),
        (3, "was rewritten without the key (its hash is a plain SHA-256)"),
    ]


def test_an_edited_event_is_detected(db):
    _tamper(db, "UPDATE audit_event SET entity_id = '999' WHERE seq = 1")
    _, problems = verify_chain(session=db)
    assert [(p.seq, p.reason) for p in problems] == [(1, "was changed after it was written")]


def test_a_deleted_event_is_detected(db):
    _tamper(db, "DELETE FROM audit_event WHERE seq = 2")
    _, problems = verify_chain(session=db)
    reasons = [p.reason for p in problems]
    assert "events 2..2 are missing" in reasons
    assert "does not follow the event before it" in reasons


def test_events_keep_ids_not_content(db):
    school = make_school(db)
    event = record_event(
        session=db,
        actor=Actor(user_id=None, request_id="req-1", ip_address="10.0.0.1"),
        action="test.event",
        school_id=school.id,
        entity_type="user",
        entity_id=42,
    )
    assert event.entity_id == "42" and event.request_id == "req-1"
    assert set(AuditEvent.model_fields) >= {"actor_user_id", "action", "entity_type", "entity_id"}
