"""The school and its shipped content: created at install, topped up on every upgrade."""

from sqlmodel import Session

from app.auth import service as auth_service
from app.auth.models import School
from app.checklists import service as checklists_service
from app.checklists.library import SHIPPED_TEMPLATES
from app.core.config import Settings
from app.escalation import service as escalation_service
from app.incidents import service as incidents_service
from app.incidents.library import PLAYBOOK
from app.retention import service as retention_service


def ensure_school(*, session: Session, settings: Settings) -> School:
    """The school, made on first use with everything Haven ships for it (idempotent)."""
    school = auth_service.get_or_create_school(
        session=session, name=settings.school_name, urn=settings.school_urn
    )
    checklists_service.install_shipped_templates(
        session=session, school_id=school.id, shipped=[*SHIPPED_TEMPLATES, PLAYBOOK]
    )
    incidents_service.install_contacts(session=session, school_id=school.id)
    escalation_service.install_default_rules(session=session, school_id=school.id)
    retention_service.install_default_rules(session=session, school_id=school.id)
    return school
