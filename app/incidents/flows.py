"""Where incidents meet other domains: a new report gets its playbook; every create and update is
checked against the escalation rules; playbook steps enter the chronology."""

from datetime import datetime
from pathlib import Path

from anyio import to_thread
from sqlmodel import Session

from app.audit.service import Actor
from app.auth.models import User
from app.checklists import service as checklists_service
from app.checklists.models import ChecklistRun
from app.core.errors import InvalidInput
from app.core.types import utcnow
from app.escalation import service as escalation_service
from app.incidents import service, uploads
from app.incidents.library import PLAYBOOK_KEY
from app.incidents.models import (
    ContentFlag,
    Incident,
    IncidentCreate,
    IncidentStatus,
    IncidentUpdate,
    TimelineKind,
)
from app.webhooks import payloads
from app.webhooks import service as webhooks_service
from app.webhooks.models import EventType


def report_incident(
    *,
    session: Session,
    school_id: int,
    data: IncidentCreate,
    reporter: User | None,
    actor: Actor,
) -> Incident:
    incident = service.create_incident(
        session=session, school_id=school_id, data=data, reporter=reporter, actor=actor
    )
    playbook = checklists_service.start_playbook(
        session=session, school_id=school_id, incident_id=incident.id, template_key=PLAYBOOK_KEY
    )
    fired = apply_rules(session=session, incident=incident, actor=actor, playbook=playbook)
    # Numbered after the slow part: the counter is held from here until the commit.
    service.number_incident(session=session, incident=incident)
    notify_escalation(session=session, incident=incident, fired=fired)
    return incident


def update_incident(
    *, session: Session, incident: Incident, data: IncidentUpdate, actor: Actor
) -> Incident:
    before = incident.status
    service.update_incident(session=session, incident=incident, data=data, actor=actor)
    escalate(session=session, incident=incident, actor=actor)
    if incident.status != before:
        webhooks_service.enqueue(
            session=session,
            school_id=incident.school_id,
            event_type=EventType.incident_updated,
            data=payloads.incident_updated(incident=incident),
        )
    return incident


def escalate(*, session: Session, incident: Incident, actor: Actor) -> list:
    """Apply the rules that now match and tell the DSL of those that notify."""
    fired = apply_rules(session=session, incident=incident, actor=actor)
    notify_escalation(session=session, incident=incident, fired=fired)
    return fired


def apply_rules(
    *, session: Session, incident: Incident, actor: Actor, playbook: ChecklistRun | None = None
) -> list:
    """Apply the rules that now match: severity raised, actions added to the playbook (found, if
    not given), the chronology told, the incident marked escalated. Each rule fires once per
    incident."""
    fired = escalation_service.evaluate(session=session, incident=incident)
    if not fired:
        return fired
    # Every change to the incident first, so that its row is written once.
    for item in fired:
        if item.rule.severity.rank > incident.severity.rank:
            incident.severity = item.rule.severity
    if incident.status in (IncidentStatus.open, IncidentStatus.in_progress):
        incident.status = IncidentStatus.escalated
    session.add(incident)
    now = utcnow()
    steps = []
    for item in fired:
        rule = item.rule
        steps += [
            (action, f"Added because the rule '{rule.name}' applies.")
            for action in rule.required_actions
        ]
        actions = " ".join(rule.required_actions)
        service.add_entry(
            session=session,
            incident=incident,
            kind=TimelineKind.escalation,
            text=f"Escalated ({rule.severity.value}): {rule.name}. {actions}".strip(),
            rationale=item.escalation.reason,
            actor=actor,
            detail={"rule": rule.key, "escalation_id": item.escalation.id},
            at=now,
        )
    playbook = playbook or checklists_service.playbook_run(session=session, incident_id=incident.id)
    if playbook is not None and steps:
        checklists_service.add_run_items(session=session, run=playbook, steps=steps)
    session.flush()
    return fired


def notify_escalation(*, session: Session, incident: Incident, fired: list) -> None:
    notifying = [item.rule for item in fired if item.rule.notify]
    if notifying:
        # Written in this transaction: the notice exists if and only if the escalation does.
        webhooks_service.enqueue(
            session=session,
            school_id=incident.school_id,
            event_type=EventType.incident_escalated,
            data=payloads.incident_escalated(incident=incident, rules=notifying),
        )


def work_playbook_step(
    *,
    session: Session,
    incident: Incident,
    item_id: int,
    done: bool,
    note: str,
    user: User,
    actor: Actor,
) -> checklists_service.RunView:
    """Tick (or untick) a playbook step; the chronology says who did it and when."""
    view = checklists_service.playbook_of(session=session, incident_id=incident.id)
    if view is None:
        raise service.NotFound("This incident has no playbook.")
    view = checklists_service.set_item(
        session=session, run=view.run, item_id=item_id, done=done, note=note, user=user, actor=actor
    )
    item = next(i for i in view.items if i.id == item_id)
    text = f"Step {item.position} {'done' if done else 'marked as not done'}: {item.text}"
    service.add_entry(
        session=session,
        incident=incident,
        kind=TimelineKind.playbook_step,
        text=text,
        rationale=note.strip(),
        actor=actor,
        detail={"item_id": item_id, "done": done},
    )
    return view


INDECENT_IMAGE_REFUSAL = (
    "Do not upload a nude or sexual image of a child, even as a screenshot: holding or sharing it "
    "can be an offence. Remove the file and describe what you saw in words instead; the DSL will "
    "take it from there."
)


def upload_limits(settings) -> dict:
    return {
        "evidence_dir": Path(settings.evidence_dir),
        "max_bytes": settings.max_upload_mb * 1024 * 1024,
        "max_pixels": settings.max_image_pixels,
    }


async def add_evidence(
    *,
    session: Session,
    incident: Incident,
    files: list,
    note: str,
    captured_at: datetime | None,
    uploaded_by: User | None,
    actor: Actor,
    limits: dict,
) -> list:
    """Store and record each file, or record a written description when there is none.

    Files are checked and written before anything is recorded, and removed again if anything
    fails, so a refused upload leaves neither a row nor a file behind."""
    if files and ContentFlag.indecent_image.value in incident.content_flags:
        raise InvalidInput(
            INDECENT_IMAGE_REFUSAL,
            errors=[{"field": "file", "message": "not allowed with indecent_image"}],
        )
    stored: list[uploads.StoredFile] = []
    try:
        for upload in files:
            stored.append(await uploads.store_upload(upload, **limits))
        common = {
            "session": session,
            "incident": incident,
            "actor": actor,
            "uploaded_by": uploaded_by,
            "note": note,
            "captured_at": captured_at,
        }

        def record() -> list:
            records = [
                service.add_evidence(
                    **common,
                    storage_name=item.storage_name,
                    sha256=item.sha256,
                    content_type=item.content_type,
                    size=item.size,
                )
                for item in stored
            ]
            if not stored:  # a written description only: the service insists on the words
                records.append(service.add_evidence(**common))
            session.flush()
            return records

        records = await to_thread.run_sync(record)  # the database's work, off the event loop
    except BaseException:
        for item in stored:
            uploads.discard(evidence_dir=limits["evidence_dir"], storage_name=item.storage_name)
        raise
    return records
