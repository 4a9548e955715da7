"""The queue's counts per status are kept by the database as incidents are written."""

from datetime import timedelta

from sqlmodel import Session, func, select

from app.audit.service import SYSTEM
from app.auth.models import User
from app.backup import _tables
from app.core.types import utcnow
from app.incidents import service
from app.incidents.models import Incident, IncidentStatus, IncidentStatusChange, IncidentUpdate
from app.jobs.service import run_due_jobs
from tests.factories import make_incident, make_user


def _counted(db, school_id: int) -> dict[IncidentStatus, int]:
    rows = db.exec(
        select(Incident.status, func.count())
        .where(Incident.school_id == school_id)
        .group_by(Incident.status)
    ).all()
    return {status: n for status, n in rows}


def _close(db, incident) -> None:
    update = IncidentUpdate(status=IncidentStatus.closed, outcome="Post removed.")
    service.update_incident(session=db, incident=incident, data=update, actor=SYSTEM)
    db.commit()


def test_counts_follow_reports_and_status_changes(db):
    reporter = make_user(db)
    school_id = reporter.school_id
    first = make_incident(db, reporter=reporter)
    second = make_incident(db, reporter=reporter)
    make_incident(db, reporter=reporter, offender_type="pupil")  # escalated by a rule
    counts = service.counts_by_status(session=db, school_id=school_id)
    assert counts[IncidentStatus.open] == 2
    assert counts[IncidentStatus.escalated] == 1
    assert counts[IncidentStatus.closed] == 0

    _close(db, first)
    counts = service.counts_by_status(session=db, school_id=school_id)
    assert counts[IncidentStatus.open] == 1
    assert counts[IncidentStatus.closed] == 1

    _close(db, second)
    counts = service.counts_by_status(session=db, school_id=school_id)
    assert {s: n for s, n in counts.items() if n} == _counted(db, school_id)


def _logged(db, school_id: int) -> list[tuple[IncidentStatus, int]]:
    return sorted(
        db.exec(
            select(IncidentStatusChange.status, IncidentStatusChange.change).where(
                IncidentStatusChange.school_id == school_id
            )
        ).all()
    )


def test_folding_leaves_one_row_per_status_in_use_and_the_same_counts(db):
    reporter = make_user(db)
    school_id = reporter.school_id
    incidents = [make_incident(db, reporter=reporter) for _ in range(3)]
    for incident in incidents[:2]:
        _close(db, incident)
    _close(db, incidents[2])
    before = service.counts_by_status(session=db, school_id=school_id)
    assert len(_logged(db, school_id)) > 2

    folded = service.fold_status_changes(session=db, school_id=school_id)
    db.commit()

    assert folded > 2
    assert service.counts_by_status(session=db, school_id=school_id) == before
    # Open came and went: no row is left for it.
    assert _logged(db, school_id) == [(IncidentStatus.closed, 3)]


def test_the_worker_folds_the_changes_once_a_minute(committed_engine):
    engine = committed_engine
    with Session(engine, expire_on_commit=False) as session:
        reporter = make_user(session)
        incident = make_incident(session, reporter=reporter)
        _close(session, incident)
        school_id = reporter.school_id
    started = utcnow()
    assert run_due_jobs(engine=engine, now=started)["incidents.fold_status_changes"] == 3
    with Session(engine) as session:
        assert _logged(session, school_id) == [(IncidentStatus.closed, 1)]
        make_incident(session, reporter=session.get(User, reporter.id))
    assert "incidents.fold_status_changes" not in run_due_jobs(
        engine=engine, now=started + timedelta(seconds=30)
    )
    done = run_due_jobs(engine=engine, now=started + timedelta(minutes=1))
    assert done["incidents.fold_status_changes"] == 2
    with Session(engine) as session:
        assert _logged(session, school_id) == [(IncidentStatus.closed, 1), (IncidentStatus.open, 1)]


def test_the_counts_are_not_backed_up_but_rebuilt():
    assert "incident_status_change" not in {table.name for table in _tables()}
