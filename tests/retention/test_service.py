"""The retention schedule, the review queue, keeping, legal holds and deletion after review."""

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from app.audit.models import AuditEvent
from app.audit.service import SYSTEM, Actor, verify_chain
from app.auth.models import Role, Scope
from app.checklists.models import ChecklistItem, ChecklistRun, ItemCompletion
from app.core.errors import Conflict, InvalidInput
from app.core.idempotency import IdempotentRequest
from app.core.types import utcnow
from app.escalation.models import Escalation
from app.incidents import flows
from app.incidents import service as incidents_service
from app.incidents.models import (
    Evidence,
    Incident,
    IncidentPerson,
    IncidentUpdate,
    TimelineEntry,
    TimelineKind,
)
from app.jobs.service import JOBS
from app.people.models import PersonKind
from app.policies.models import PolicyAcknowledgement, PolicyVersion
from app.retention import service
from app.retention.library import SHIPPED_RULES
from app.retention.models import RecordKind, RecordRetention, RecordType, RetentionRule
from app.webhooks.models import DeliveryAttempt, OutboxMessage
from tests.factories import (
    bearer,
    incident_data,
    make_endpoint,
    make_incident,
    make_person,
    make_school,
    make_token,
    make_user,
)
from tests.retention.records import (
    ALL_NO,
    close,
    closed_incident,
    finished_checklist,
    superseded_version,
    years_ago,
)

# An endpoint told of every kind of record, so each has outbox messages to delete.
EVERY_EVENT = ("incident.escalated", "incident.updated", "checklist.overdue", "policy.review_due")


def _due_ids(db, kind=RecordKind.incident, now=None) -> list[int]:
    school = make_school(db)
    queue = service.review_queue(session=db, school_id=school.id, now=now, kinds=[kind])
    return [record.record_id for record in queue.records[kind]]


def _count(db, model, *where) -> int:
    return db.exec(select(func.count()).select_from(model).where(*where)).one()


def _dsl(db):
    user = make_user(db, role=Role.dsl)
    return user, Actor(user_id=user.id)


def _delete(db, record, actor, kind=RecordKind.incident):
    school = make_school(db)
    return service.delete_after_review(
        session=db,
        school_id=school.id,
        kind=kind,
        record_id=record.id,
        reason="period_over",
        confirmed=True,
        actor=actor,
    )


# The schedule -------------------------------------------------------------------------------------


def test_every_school_gets_the_shipped_schedule(db):
    school = make_school(db)
    stored = db.exec(select(RetentionRule).where(RetentionRule.school_id == school.id)).all()
    assert {row.record_type for row in stored} == set(RecordType)
    rules = service.schedule(session=db, school_id=school.id)
    assert [r.record_type for r in rules.values()] == [s.record_type for s in SHIPPED_RULES]
    assert rules[RecordType.incident_pupil].years == 25
    assert rules[RecordType.incident_staff_allegation].years == 10
    assert all(rule.shipped.source for rule in rules.values())


def test_a_period_of_zero_or_less_is_refused_and_nothing_is_saved(db):
    school = make_school(db)
    _, actor = _dsl(db)
    for years in (0, -1, -25, 101):
        with pytest.raises(InvalidInput, match="Nothing was saved"):
            service.set_years(
                session=db,
                school_id=school.id,
                record_type=RecordType.incident_adult,
                years=years,
                actor=actor,
            )
    assert service.schedule(session=db, school_id=school.id)[RecordType.incident_adult].years == 6
    rule = service.set_years(
        session=db, school_id=school.id, record_type=RecordType.incident_adult, years=8, actor=actor
    )
    assert rule.years == 8 and rule.changed and rule.updated_by_id == actor.user_id
    # The database refuses it too.
    savepoint = db.begin_nested()
    with pytest.raises(sa.exc.IntegrityError):
        db.execute(sa.update(RetentionRule).values(years=0))
    savepoint.rollback()


# What is due -----------------------------------------------------------------------------------


def test_incidents_fall_under_the_right_line(db):
    pupil = make_person(db)
    teacher = make_person(db, PersonKind.staff, forename="Teach", is_active=False)
    cases = {
        RecordType.incident_pupil: closed_incident(db, offender_type="pupil"),
        RecordType.incident_adult: closed_incident(db),  # a parent about a teacher
        RecordType.incident_staff_allegation: closed_incident(db, offender_type="staff"),
        RecordType.incident_staff_low_level: closed_incident(
            db,
            offender_type="staff",
            lado_harm_test=ALL_NO,
            people=[{"person_id": teacher.id, "role": "subject"}],
        ),
        RecordType.incident_phone_misuse: closed_incident(
            db, category="phone_misuse", platform="none"
        ),
    }
    pupil_witness = closed_incident(db, people=[{"person_id": pupil.id, "role": "witness"}])
    harmful_phone = closed_incident(
        db, category="phone_misuse", platform="none", content_flags=["sexual"]
    )
    school = make_school(db)
    queue = service.review_queue(session=db, school_id=school.id, kinds=[RecordKind.incident])
    found = {r.record_id: r.record_type for r in queue.records[RecordKind.incident]}
    for record_type, incident in cases.items():
        assert found[incident.id] == record_type, record_type
    assert found[pupil_witness.id] == RecordType.incident_pupil  # a pupil on the roster
    assert found[harmful_phone.id] == RecordType.incident_adult  # not "just" phone misuse


def test_an_open_incident_never_appears_in_the_queue(db):
    old_open = make_incident(db)
    old_open.reported_at = old_open.occurred_at = years_ago(40)
    db.add(old_open)
    reopened = closed_incident(db, years=40)
    flows.update_incident(
        session=db,
        incident=reopened,
        data=IncidentUpdate(status="in_progress", reason="New information from the police."),
        actor=SYSTEM,
    )
    db.commit()
    closed = closed_incident(db, years=40)
    assert _due_ids(db) == [closed.id]
    school = make_school(db)
    assert service.find_due(
        session=db, school_id=school.id, kind=RecordKind.incident, record_id=old_open.id,
        now=utcnow() + timedelta(days=366 * 100),
    ) is None  # fmt: skip


def test_the_period_is_counted_from_closing_under_the_schools_years(db):
    five = closed_incident(db, years=5)
    seven = closed_incident(db, years=7)
    assert _due_ids(db) == [seven.id]  # incidents about adults: six years
    school = make_school(db)
    _, actor = _dsl(db)
    service.set_years(
        session=db, school_id=school.id, record_type=RecordType.incident_adult, years=4, actor=actor
    )
    assert _due_ids(db) == [seven.id, five.id]  # oldest first


def test_concerns_about_staff_still_on_the_roster_are_never_due(db):
    teacher = make_person(db, PersonKind.staff, forename="Teach")
    concern = closed_incident(
        db,
        years=40,
        offender_type="staff",
        lado_harm_test=ALL_NO,
        people=[{"person_id": teacher.id, "role": "subject"}],
    )
    assert _due_ids(db) == []
    teacher.is_active = False  # they have left
    db.add(teacher)
    db.commit()
    assert _due_ids(db) == [concern.id]


def test_other_records_are_due_after_their_own_periods(db):
    old_run = finished_checklist(db, years=7)
    finished_checklist(db, years=5)
    unfinished = finished_checklist(db, years=30)
    unfinished.completed_at = None
    db.add(unfinished)
    db.commit()
    first, _ = superseded_version(db, years=7)
    assert _due_ids(db, RecordKind.checklist_run) == [old_run.id]
    assert _due_ids(db, RecordKind.policy_version) == [first.id]  # never the one in force
    recent, _ = superseded_version(db, years=2)
    assert recent.id not in _due_ids(db, RecordKind.policy_version)


# Keeping -----------------------------------------------------------------------------------------


def test_keeping_for_longer_is_written_to_the_chronology(db):
    incident = closed_incident(db)
    school = make_school(db)
    user, actor = _dsl(db)
    until = service.keep(
        session=db,
        school_id=school.id,
        kind=RecordKind.incident,
        record_id=incident.id,
        years=2,
        reason="A civil claim by the family is expected.",
        actor=actor,
    )
    db.commit()
    assert until.year == utcnow().year + 2
    assert _due_ids(db) == []
    assert _due_ids(db, now=utcnow() + timedelta(days=366 * 2 + 1)) == [incident.id]
    entry = incidents_service.timeline(session=db, incident=incident)[-1]
    assert entry.kind == TimelineKind.decision and entry.actor_user_id == user.id
    assert "kept for 2 more years" in entry.text
    assert entry.rationale == "A civil claim by the family is expected."
    event = db.exec(select(AuditEvent).where(AuditEvent.action == "retention.kept")).one()
    assert "claim" not in json.dumps(event.detail)


def test_keeping_needs_a_reason_whole_years_and_a_record_due(db):
    due = closed_incident(db)
    recent = closed_incident(db, years=1)
    school = make_school(db)
    _, actor = _dsl(db)
    keep = dict(session=db, school_id=school.id, kind=RecordKind.incident, actor=actor)
    with pytest.raises(InvalidInput, match="reason"):
        service.keep(**keep, record_id=due.id, years=2, reason="  ")
    with pytest.raises(InvalidInput, match="at least one year"):
        service.keep(**keep, record_id=due.id, years=0, reason="Why not")
    with pytest.raises(Conflict, match="not due"):
        service.keep(**keep, record_id=recent.id, years=2, reason="Still needed")


# Legal holds and deletion -------------------------------------------------------------------------


def test_a_held_record_survives_deletion_and_an_unheld_one_goes(db):
    held = closed_incident(db)
    unheld = closed_incident(db)
    school = make_school(db)
    _, actor = _dsl(db)
    service.place_hold(
        session=db,
        school_id=school.id,
        kind=RecordKind.incident,
        record_id=held.id,
        reason="Solicitor's letter about a claim.",
        actor=actor,
    )
    db.commit()
    queue = service.review_queue(session=db, school_id=school.id, kinds=[RecordKind.incident])
    assert {r.record_id: r.held for r in queue.records[RecordKind.incident]} == {
        held.id: True,
        unheld.id: False,
    }
    assert service.count_due(session=db, school_id=school.id) == 1  # held ones wait
    with pytest.raises(Conflict, match="legal hold"):
        _delete(db, held, actor)
    db.rollback()
    _delete(db, unheld, actor)
    db.commit()
    assert db.get(Incident, held.id) is not None
    assert _count(db, TimelineEntry, TimelineEntry.incident_id == held.id) > 0
    assert db.get(Incident, unheld.id) is None


def test_placing_and_removing_a_hold_are_recorded(db):
    incident = closed_incident(db)
    school = make_school(db)
    _, actor = _dsl(db)
    hold = dict(session=db, school_id=school.id, kind=RecordKind.incident, record_id=incident.id)
    service.place_hold(**hold, reason="Police investigation.", actor=actor)
    with pytest.raises(Conflict, match="already"):
        service.place_hold(**hold, reason="Again.", actor=actor)
    with pytest.raises(InvalidInput, match="reason"):
        service.remove_hold(**hold, reason="", actor=actor)
    service.remove_hold(**hold, reason="The police closed their case.", actor=actor)
    with pytest.raises(Conflict, match="not under a legal hold"):
        service.remove_hold(**hold, reason="Twice.", actor=actor)
    db.commit()
    entries = incidents_service.timeline(session=db, incident=incident)[-2:]
    assert [e.text for e in entries] == [
        "Legal hold placed: no part of this record may be deleted while it stands.",
        "Legal hold removed.",
    ]
    assert [e.rationale for e in entries] == [
        "Police investigation.",
        "The police closed their case.",
    ]
    actions = db.exec(
        select(AuditEvent.action).where(AuditEvent.action.like("retention.hold%"))
    ).all()
    assert actions == ["retention.hold_placed", "retention.hold_removed"]
    assert service.holds(session=db, school_id=school.id) == []


def test_a_hold_can_be_placed_on_any_incident_and_any_deletable_record(db):
    open_incident = make_incident(db)
    run = finished_checklist(db, years=1)
    version, _ = superseded_version(db, years=1)
    school = make_school(db)
    _, actor = _dsl(db)
    for kind, record in (
        (RecordKind.incident, open_incident),
        (RecordKind.checklist_run, run),
        (RecordKind.policy_version, version),
    ):
        service.place_hold(
            session=db,
            school_id=school.id,
            kind=kind,
            record_id=record.id,
            reason="Inquiry.",
            actor=actor,
        )
    held = service.holds(session=db, school_id=school.id)
    assert [(h.kind, h.record_id) for h in held] == [
        (RecordKind.incident, open_incident.id),
        (RecordKind.checklist_run, run.id),
        (RecordKind.policy_version, version.id),
    ]
    assert held[0].label == open_incident.reference
    assert held[2].label == "Staff social media, version 1"


def test_deleting_an_incident_removes_everything_belonging_to_it(db, client):
    make_endpoint(db, events=EVERY_EVENT)
    pupil = make_person(db)
    incident = make_incident(
        db,
        offender_type="pupil",  # escalates: an escalation, playbook steps, a notice
        content_flags=["abusive"],
        people=[{"person_id": pupil.id, "role": "victim"}],
    )
    incidents_service.add_evidence(
        session=db,
        incident=incident,
        actor=SYSTEM,
        uploaded_by=None,
        note="Described: a message calling her names.",
        captured_at=None,
    )
    run = db.exec(select(ChecklistRun).where(ChecklistRun.incident_id == incident.id)).one()
    item = db.exec(select(ChecklistItem).where(ChecklistItem.run_id == run.id)).first()
    db.add(ItemCompletion(run_id=run.id, item_id=item.id, note="Done by phone."))
    other = make_incident(db, offender_type="pupil")
    close(db, incident)
    message = db.exec(select(OutboxMessage)).first()
    db.add(DeliveryAttempt(message_id=message.id, status_code=500))
    db.commit()
    counts_before = {
        model: _count(db, model)
        for model in (TimelineEntry, Evidence, IncidentPerson, Escalation, ChecklistRun)
    }
    _, actor = _dsl(db)
    deletion = _delete(db, incident, actor)
    db.commit()
    gone = incident.id
    assert db.get(Incident, gone) is None
    for model, column in (
        (TimelineEntry, TimelineEntry.incident_id),
        (Evidence, Evidence.incident_id),
        (IncidentPerson, IncidentPerson.incident_id),
        (Escalation, Escalation.incident_id),
        (ChecklistRun, ChecklistRun.incident_id),
    ):
        assert _count(db, model, column == gone) == 0, model
        assert _count(db, model) < counts_before[model]
    assert _count(db, ItemCompletion, ItemCompletion.run_id == run.id) == 0
    assert _count(db, ChecklistItem, ChecklistItem.run_id == run.id) == 0
    assert _count(db, RecordRetention) == 0
    payloads = [m.payload["data"].get("incident_id") for m in db.exec(select(OutboxMessage))]
    assert gone not in payloads and other.id in payloads
    assert _count(db, DeliveryAttempt) == 0
    # The other incident, and the roster, are untouched.
    assert db.get(Incident, other.id) is not None and db.get(type(pupil), pupil.id) is not None
    assert deletion.removed["incident"] == 1 and deletion.removed["escalations"] >= 1
    assert deletion.files == []


def test_the_audit_entry_of_a_deletion_has_no_content(db):
    pupil = make_person(db, forename="Zebedee")
    incident = closed_incident(
        db,
        title="Zebedee's video",
        description="Unkind words about Zebedee Example.",
        offender_type="pupil",
        people=[{"person_id": pupil.id, "role": "victim"}],
    )
    user, actor = _dsl(db)
    _delete(db, incident, actor)
    db.commit()
    event = db.exec(select(AuditEvent).where(AuditEvent.action == "retention.deleted")).one()
    assert (event.entity_type, event.entity_id) == ("incident", str(incident.id))
    assert event.actor_user_id == user.id
    assert event.detail["reference"] == incident.reference
    assert event.detail["record_type"] == "incident_pupil"
    assert event.detail["rule"] == "25 years after the incident was closed"
    assert event.detail["reviewer"] == user.id and event.detail["reason"] == "period_over"
    assert set(event.detail) == {
        "reference",
        "record_type",
        "rule",
        "reason",
        "reviewer",
        "removed",
    }
    text = json.dumps(event.detail)
    for content in ("Zebedee", "video", "Unkind", "Example", "Resolved", "victim"):
        assert content not in text
    # Nothing was taken out of the audit trail: the chain is whole.
    checked, problems = verify_chain(session=db)
    assert checked > 0 and problems == []


def test_deletion_needs_a_confirmed_reason_and_a_closed_record_due(db):
    due = closed_incident(db)
    recent = closed_incident(db, years=1)
    open_incident = make_incident(db)
    school = make_school(db)
    _, actor = _dsl(db)
    base = dict(session=db, school_id=school.id, kind=RecordKind.incident, actor=actor)
    with pytest.raises(InvalidInput, match="reason"):
        service.delete_after_review(**base, record_id=due.id, reason="", confirmed=True)
    with pytest.raises(InvalidInput, match="Tick the box"):
        service.delete_after_review(**base, record_id=due.id, reason="period_over", confirmed=False)
    with pytest.raises(Conflict, match="not due"):
        service.delete_after_review(
            **base, record_id=recent.id, reason="period_over", confirmed=True
        )
    with pytest.raises(Conflict, match="not closed"):
        service.delete_after_review(
            **base, record_id=open_incident.id, reason="period_over", confirmed=True
        )
    db.rollback()
    assert all(db.get(Incident, i.id) for i in (due, recent, open_incident))


def test_deleting_a_finished_checklist_and_a_superseded_policy_version(db):
    make_endpoint(db, events=EVERY_EVENT)
    run = finished_checklist(db)
    item = db.exec(select(ChecklistItem)).first()
    db.add(ItemCompletion(run_id=run.id, item_id=item.id))
    version, current = superseded_version(db)
    _, actor = _dsl(db)
    _delete(db, run, actor, RecordKind.checklist_run)
    _delete(db, version, actor, RecordKind.policy_version)
    db.commit()
    assert db.get(ChecklistRun, run.id) is None
    assert _count(db, ItemCompletion, ItemCompletion.run_id == run.id) == 0
    assert db.get(PolicyVersion, version.id) is None
    assert db.get(PolicyVersion, current.id) is not None
    assert _count(db, PolicyAcknowledgement, PolicyAcknowledgement.version_id == version.id) == 0
    events = db.exec(select(AuditEvent).where(AuditEvent.action == "retention.deleted")).all()
    assert [e.detail["record_type"] for e in events] == ["checklist_run", "policy_version"]
    assert "Example" not in json.dumps([e.detail for e in events])  # no one's name


# What the database itself refuses -----------------------------------------------------------------


def _refused(db, statement, match, **params):
    savepoint = db.begin_nested()
    with pytest.raises(sa.exc.DBAPIError, match=match):
        db.execute(sa.text(statement), params)
    savepoint.rollback()


def test_the_database_refuses_to_change_or_delete_the_chronology(db):
    incident = closed_incident(db)
    _refused(db, "UPDATE timeline_entry SET text = 'rewritten'", "cannot be changed")
    _refused(db, "DELETE FROM timeline_entry", "deleted only with their incident")
    _refused(
        db, "DELETE FROM timeline_entry WHERE incident_id = :id", "deleted only", id=incident.id
    )
    _refused(db, "DELETE FROM incident WHERE id = :id", "after a retention review", id=incident.id)
    # Even in a deletion after review, a chronology entry is never changed...
    retention = RecordRetention(
        school_id=incident.school_id, kind=RecordKind.incident, record_id=incident.id, deleting=True
    )
    db.add(retention)
    db.flush()
    _refused(db, "UPDATE timeline_entry SET text = 'rewritten'", "cannot be changed")
    # ...and nothing of a held incident can go, whatever the application does.
    retention.hold_since = utcnow()
    db.add(retention)
    db.flush()
    _refused(
        db, "DELETE FROM timeline_entry WHERE incident_id = :id", "deleted only", id=incident.id
    )
    assert _count(db, TimelineEntry, TimelineEntry.incident_id == incident.id) > 0


def test_the_audit_trail_is_never_deleted(db):
    closed_incident(db)
    _refused(db, "DELETE FROM audit_event", "append-only")


# Counting for the home page -----------------------------------------------------------------------


def test_the_daily_job_counts_records_due_for_review(db):
    closed_incident(db)
    closed_incident(db)
    closed_incident(db, years=1)
    school = make_school(db)
    (job,) = [j for j in JOBS if j.name == "retention.review_due"]
    assert job.every == timedelta(days=1)
    assert job.run(db, school.id, utcnow()) == 2
    check = service.last_count(session=db, school_id=school.id)
    assert check.due == 2
    assert _count(db, Incident) == 3  # counting never deletes


def test_a_deleted_incident_leaves_no_stored_api_answer(client, db):
    raw, _ = make_token(db, Scope.incidents_write, Scope.incidents_read)
    headers = {**bearer(raw), "Idempotency-Key": "create-1"}
    body = incident_data().model_dump(mode="json", exclude_defaults=True)
    created = client.post("/api/v1/incidents", json=body, headers=headers)
    assert created.status_code == 201
    kept = client.post(
        "/api/v1/incidents", json=body, headers={**headers, "Idempotency-Key": "create-2"}
    )
    incident = db.get(Incident, created.json()["id"])
    close(db, incident)
    assert _count(db, IdempotentRequest) == 2
    _, actor = _dsl(db)
    deletion = _delete(db, incident, actor)
    db.commit()
    assert deletion.removed["idempotency_records"] == 1
    (left,) = db.exec(select(IdempotentRequest)).all()
    assert left.response["id"] == kept.json()["id"]
    assert client.get(f"/api/v1/incidents/{incident.id}", headers=headers).status_code == 404
