"""The anchor log: the chain's signed head outside the database, checked against the chain."""

import json
import stat
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from app.audit.anchors import anchor_log_path, check_anchors, write_anchor
from app.audit.service import SYSTEM, record_event, verify_chain
from app.jobs.service import run_due_jobs
from tests.audit.tamper import delete_newest_events

AT = datetime(2026, 12, 8, 4, 0, tzinfo=UTC)


def _record(session: Session, count: int) -> None:
    for n in range(count):
        record_event(
            session=session, actor=SYSTEM, action="test.event", school_id=None, entity_id=n
        )
    session.commit()


def test_events_deleted_after_an_anchor_are_named(db, tmp_path):
    _record(db, 5)
    write_anchor(session=db, evidence_dir=tmp_path, now=AT)
    delete_newest_events(db, after=3)
    assert verify_chain(session=db) == (3, [])  # the chain alone cannot tell
    assert check_anchors(session=db, evidence_dir=tmp_path) == (
        1,
        [
            "the chain ends at event 3 but the anchor of 08 Dec 2026 04:00 UTC says 5: "
            "events 4..5 are missing"
        ],
    )


def test_an_emptied_chain_is_named(db, tmp_path):
    _record(db, 2)
    write_anchor(session=db, evidence_dir=tmp_path, now=AT)
    delete_newest_events(db, after=0)
    _, problems = check_anchors(session=db, evidence_dir=tmp_path)
    assert problems == [
        "the chain is empty but the anchor of 08 Dec 2026 04:00 UTC says 2: events 1..2 are missing"
    ]


def test_an_edited_or_foreign_anchor_line_is_reported(db, tmp_path):
    _record(db, 3)
    write_anchor(session=db, evidence_dir=tmp_path, now=AT)
    log = anchor_log_path(tmp_path)
    anchor = json.loads(log.read_text())
    lowered = {**anchor, "seq": 2}  # as if to hide the deletion of event 3
    log.write_text(json.dumps(lowered) + "\nnot an anchor\n")
    assert check_anchors(session=db, evidence_dir=tmp_path) == (
        0,
        [
            "line 1 of the anchor log (event 2, 08 Dec 2026 04:00 UTC) has no valid signature: "
            "it was edited, or not written with this HAVEN_SECRET_KEY",
            "line 2 of the anchor log is not an anchor",
        ],
    )


def test_a_rewritten_anchored_event_is_reported(db, backend, tmp_path):
    _record(db, 2)
    write_anchor(session=db, evidence_dir=tmp_path, now=AT)
    if backend == "postgresql":
        db.execute(sa.text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
    else:
        db.execute(sa.text("DROP TRIGGER audit_event_no_update"))
    db.execute(sa.text("UPDATE audit_event SET hash = :h WHERE seq = 2"), {"h": "f" * 64})
    _, problems = check_anchors(session=db, evidence_dir=tmp_path)
    assert problems == [
        "event 2 differs from the anchor of 08 Dec 2026 04:00 UTC: it, or an event before it, "
        "was changed"
    ]


def test_the_log_is_appended_to_only_when_the_head_moved_and_only_its_owner_reads_it(db, tmp_path):
    assert write_anchor(session=db, evidence_dir=tmp_path) is None  # nothing to anchor yet
    _record(db, 2)
    first = write_anchor(session=db, evidence_dir=tmp_path, only_if_moved=True, now=AT)
    assert write_anchor(session=db, evidence_dir=tmp_path, only_if_moved=True) is None
    _record(db, 1)
    second = write_anchor(session=db, evidence_dir=tmp_path, only_if_moved=True)
    log = anchor_log_path(tmp_path)
    assert log == tmp_path / "audit" / "anchors.log"
    assert [json.loads(line)["seq"] for line in log.read_text().splitlines()] == [2, 3]
    assert (first.seq, second.seq) == (2, 3)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert check_anchors(session=db, evidence_dir=tmp_path) == (2, [])


def test_the_worker_anchors_the_head_every_few_minutes_when_it_moved(committed_engine, tmp_path):
    with Session(committed_engine) as session:
        _record(session, 2)

    def run(minutes: int) -> int:
        done = run_due_jobs(
            engine=committed_engine,
            jobs=[],
            evidence_dir=tmp_path,
            now=AT + timedelta(minutes=minutes),
        )
        return done.get("audit.anchor", -1)  # -1: not due yet

    assert run(0) == 1
    assert run(1) == -1
    assert run(5) == 0  # due, but the head has not moved
    with Session(committed_engine) as session:
        _record(session, 1)
        assert run(10) == 1
        assert check_anchors(session=session, evidence_dir=tmp_path) == (2, [])
    lines = anchor_log_path(tmp_path).read_text().splitlines()
    assert [(json.loads(line)["seq"], json.loads(line)["at"]) for line in lines] == [
        (2, "2026-12-08T04:00:00+00:00"),
        (3, "2026-12-08T04:10:00+00:00"),
    ]
