"""Where checklists meet other domains: new accounts get their checklists."""

from sqlmodel import Session

from app.audit.service import Actor
from app.auth import service as auth_service
from app.auth.models import User, UserCreate
from app.checklists import service


def create_user(*, session: Session, school_id: int, data: UserCreate, actor: Actor) -> User:
    """Create an account and give it the checklists every new member of staff works through."""
    user = auth_service.create_user(session=session, school_id=school_id, data=data, actor=actor)
    service.give_new_staff_checklists(session=session, user=user, actor=actor)
    return user
