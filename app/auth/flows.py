"""Where accounts meet other domains: a new account gets its place in the roster and the
checklists every new member of staff works through."""

from sqlmodel import Session

from app.audit.service import Actor
from app.auth import service as auth_service
from app.auth.models import User, UserCreate
from app.checklists import service as checklists_service
from app.people import service as people_service


def create_user(*, session: Session, school_id: int, data: UserCreate, actor: Actor) -> User:
    """Create an account, link it to the roster's staff entry with the same email, and give it
    the checklists every new member of staff works through."""
    user = auth_service.create_user(session=session, school_id=school_id, data=data, actor=actor)
    auth_service.link_accounts_to_people(
        session=session,
        school_id=school_id,
        person_ids_by_email=people_service.staff_person_ids_by_email(
            session=session, school_id=school_id, emails=[user.email]
        ),
        actor=actor,
    )
    checklists_service.give_new_staff_checklists(session=session, user=user, actor=actor)
    return user
