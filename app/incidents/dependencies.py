"""Who may see incidents: the DSL and deputies see all; everyone else only their own reports."""

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import require_roles
from app.auth.models import Role, User
from app.core.db import DbSession
from app.incidents import service
from app.incidents.models import Incident

SAFEGUARDING_ROLES = (Role.dsl, Role.deputy_dsl)

SafeguardingLead = Annotated[User, Depends(require_roles(*SAFEGUARDING_ROLES))]


def current_incident(session: DbSession, user: SafeguardingLead, incident_id: int) -> Incident:
    return service.get_incident(session=session, school_id=user.school_id, incident_id=incident_id)


CurrentIncident = Annotated[Incident, Depends(current_incident)]
