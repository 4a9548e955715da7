"""Incident rules: references, the chronology, status changes, entries and the playbook."""

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlmodel import select

from app.audit.models import AuditEvent
from app.audit.service import SYSTEM
from app.auth.models import Role
from app.checklists import service as checklists_service
from app.core.errors import InvalidInput
from app.core.types import utcnow
from app.incidents import flows, service
from app.incidents.models import (
    ContactWith,
    IncidentStatus,
    IncidentUpdate,
    LadoHarmTest,
    TimelineEntry,
    TimelineKind,
)
from tests.factories import incident_data, make_incident, make_user


def _kinds(db, incident):
    return [e.kind for e in service.timeline(session=db, incident=incident)]


def test_references_count_up_per_year(db):
    first, second = make_incident(db), make_incident(db)
    year = utcnow().year
    assert first.reference == f"INC-{year}-0001"
    assert second.reference == f"INC-{year}-0002"


def test_a_report_starts_the_chronology_and_the_playbook(db):
    incident = make_incident(db)
    assert _kinds(db, incident) == [TimelineKind.reported]
    playbook = checklists_service.playbook_of(session=db, incident_id=incident.id)
    assert playbook is not None and playbook.total == 11 and playbook.run.assignee_id is None
    actions = [e.action for e in db.exec(select(AuditEvent)).all()]
    assert "incident.reported" in actions


def test_occurred_at_cannot_be_in_the_future():
    with pytest.raises(ValidationError, match="cannot be in the future"):
        incident_data(occurred_at=utcnow() + timedelta(days=1))


def test_unknown_enum_values_are_refused():
    with pytest.raises(ValidationError):
        incident_data(platform="myspace")


def test_status_changes_enter_the_chronology_and_closing_needs_an_outcome(db):
    incident = make_incident(db)
    with pytest.raises(InvalidInput, match="outcome"):
        service.update_incident(
            session=db, incident=incident, data=IncidentUpdate(status="closed"), actor=SYSTEM
        )
    db.rollback()
    service.update_incident(
        session=db,
        incident=incident,
        data=IncidentUpdate(status="closed", outcome="Video removed."),
        actor=SYSTEM,
    )
    assert incident.closed_at is not None
    assert _kinds(db, incident)[-1] == TimelineKind.status_change


def test_reopening_a_closed_incident_needs_a_reason(db):
    incident = make_incident(db)
    service.update_incident(
        session=db,
        incident=incident,
        data=IncidentUpdate(status="closed", outcome="Resolved."),
        actor=SYSTEM,
    )
    db.commit()
    with pytest.raises(InvalidInput, match="needs a reason"):
        service.update_incident(
            session=db, incident=incident, data=IncidentUpdate(status="in_progress"), actor=SYSTEM
        )
    db.rollback()
    db.refresh(incident)
    assert incident.status == IncidentStatus.closed
    service.update_incident(
        session=db,
        incident=incident,
        data=IncidentUpdate(status="in_progress", reason="The video was posted again."),
        actor=SYSTEM,
    )
    entry = service.timeline(session=db, incident=incident)[-1]
    assert entry.rationale == "The video was posted again." and incident.closed_at is None


def test_assignment_only_to_a_dsl_or_deputy(db):
    incident = make_incident(db)
    staff, deputy = make_user(db), make_user(db, role=Role.deputy_dsl)
    with pytest.raises(InvalidInput, match="DSL or deputy"):
        service.update_incident(
            session=db, incident=incident, data=IncidentUpdate(assigned_to=staff.id), actor=SYSTEM
        )
    service.update_incident(
        session=db, incident=incident, data=IncidentUpdate(assigned_to=deputy.id), actor=SYSTEM
    )
    assert (
        service.timeline(session=db, incident=incident)[-1].text
        == f"Assigned to {deputy.display_name}."
    )


def test_decisions_need_reasons_and_contacts_need_a_who(db):
    incident = make_incident(db)
    with pytest.raises(InvalidInput, match="reasons"):
        service.add_written_entry(
            session=db,
            incident=incident,
            kind="decision",
            text="Not referring to police.",
            rationale=" ",
            contact_with=None,
            actor=SYSTEM,
        )
    with pytest.raises(InvalidInput, match="who was contacted"):
        service.add_written_entry(
            session=db,
            incident=incident,
            kind="contact",
            text="Rang them.",
            rationale="",
            contact_with=None,
            actor=SYSTEM,
        )
    with pytest.raises(InvalidInput, match="note, a decision or a contact"):
        service.add_written_entry(
            session=db,
            incident=incident,
            kind="status_change",
            text="Sneaky.",
            rationale="",
            contact_with=None,
            actor=SYSTEM,
        )
    service.add_written_entry(
        session=db,
        incident=incident,
        kind="contact",
        text="Reported to POSH by phone.",
        rationale="",
        contact_with=ContactWith.posh,
        actor=SYSTEM,
    )
    assert _kinds(db, incident) == [TimelineKind.reported, TimelineKind.contact]


def test_chronology_entries_cannot_be_edited(db):
    import sqlalchemy as sa

    make_incident(db)
    savepoint = db.begin_nested()
    with pytest.raises(sa.exc.DBAPIError, match="cannot be changed"):
        db.execute(sa.update(TimelineEntry).values(text="rewritten"))
    savepoint.rollback()


def test_lado_harm_test_answers_are_stored_and_explained(db):
    incident = make_incident(db, offender_type="staff", category="staff_conduct")
    service.update_incident(
        session=db,
        incident=incident,
        data=IncidentUpdate(lado_harm_test=LadoHarmTest(unsuitable=True)),
        actor=SYSTEM,
    )
    assert incident.lado_harm_test["unsuitable"] is True
    assert "refer to the LADO" in service.timeline(session=db, incident=incident)[-1].text


def test_playbook_steps_record_who_and_when_in_the_chronology(db):
    dsl = make_user(db, role=Role.dsl)
    incident = make_incident(db)
    step = checklists_service.playbook_of(session=db, incident_id=incident.id).items[0]
    view = flows.work_playbook_step(
        session=db,
        incident=incident,
        item_id=step.id,
        done=True,
        note="Spoke to Mr Example.",
        user=dsl,
        actor=SYSTEM,
    )
    completion = view.completions[step.id]
    assert completion.completed_by_id == dsl.id and completion.note == "Spoke to Mr Example."
    entry = service.timeline(session=db, incident=incident)[-1]
    assert entry.kind == TimelineKind.playbook_step and "Step 1 done" in entry.text


def test_staff_cannot_work_a_playbook(db):
    staff = make_user(db)
    incident = make_incident(db)
    step = checklists_service.playbook_of(session=db, incident_id=incident.id).items[0]
    from app.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        flows.work_playbook_step(
            session=db,
            incident=incident,
            item_id=step.id,
            done=True,
            note="",
            user=staff,
            actor=SYSTEM,
        )


def test_people_must_be_on_the_roster_or_described(db):
    with pytest.raises(InvalidInput, match="not on the school's roster"):
        make_incident(db, people=[{"person_id": 424242, "role": "victim"}])
    db.rollback()
    with pytest.raises(InvalidInput, match="short description"):
        make_incident(db, people=[{"role": "witness"}])
