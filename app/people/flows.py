"""Where the roster meets accounts: staff are linked to their accounts, leavers lose access."""

from sqlmodel import Session

from app.audit.service import Actor
from app.auth import service as auth_service
from app.people import service
from app.people.models import PeopleSync, PeopleSyncResult, PersonKind


def sync_roster(
    *, session: Session, school_id: int, data: PeopleSync, actor: Actor
) -> PeopleSyncResult:
    """Upsert the roster, link staff accounts by email and deactivate the accounts of leavers."""
    plan = service.plan_sync(session=session, school_id=school_id, data=data)
    leaver_ids = [person.id for person in plan.leavers]
    result = service.apply_sync(session=session, school_id=school_id, plan=plan, actor=actor)
    emails = service.staff_person_ids_by_email(
        session=session,
        school_id=school_id,
        emails=[p.email for p in data.people if p.email and p.kind == PersonKind.staff],
    )
    result.accounts_linked = auth_service.link_accounts_to_people(
        session=session, school_id=school_id, person_ids_by_email=emails, actor=actor
    )
    result.accounts_deactivated = auth_service.deactivate_accounts_of_leavers(
        session=session, school_id=school_id, person_ids=leaver_ids, actor=actor
    )
    return result
