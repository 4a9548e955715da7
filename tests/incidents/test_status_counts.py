"""The queue's counts per status are kept by the database as incidents are written."""

from sqlmodel import func, select

from app.audit.service import SYSTEM
from app.core.backup import _tables
from app.incidents import service
from app.incidents.models import Incident, IncidentStatus, IncidentStatusCount, IncidentUpdate
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
    # A status nobody has any more leaves no row behind, so a restored copy holds the same rows.
    statuses = db.exec(
        select(IncidentStatusCount.status).where(IncidentStatusCount.school_id == school_id)
    ).all()
    assert set(statuses) == {IncidentStatus.closed, IncidentStatus.escalated}


def test_the_counts_are_not_backed_up_but_rebuilt():
    assert "incident_status_count" not in {table.name for table in _tables()}
