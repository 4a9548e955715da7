"""Who may see what in checklists."""

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import require_roles
from app.auth.models import Role, User

LEADERS = (Role.dsl, Role.deputy_dsl, Role.slt)

ChecklistLead = Annotated[User, Depends(require_roles(*LEADERS))]
