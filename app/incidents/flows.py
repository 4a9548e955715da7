"""Where incidents meet other domains: a new report gets its playbook; playbook steps enter the
chronology."""

from sqlmodel import Session

from app.audit.service import Actor
from app.auth.models import User
from app.checklists import service as checklists_service
from app.incidents import service
from app.incidents.library import PLAYBOOK_KEY
from app.incidents.models import Incident, IncidentCreate, TimelineKind


def report_incident(
    *, session: Session, school_id: int, data: IncidentCreate, reporter: User | None, actor: Actor
) -> Incident:
    incident = service.create_incident(
        session=session, school_id=school_id, data=data, reporter=reporter, actor=actor
    )
    checklists_service.start_playbook(
        session=session, school_id=school_id, incident_id=incident.id, template_key=PLAYBOOK_KEY
    )
    return incident


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
