"""Records of every kind, closed, finished or superseded as long ago as a test needs."""

from datetime import date, timedelta

from sqlmodel import Session

from app.audit.service import SYSTEM
from app.auth.models import Role
from app.core.types import utcnow
from app.incidents import flows
from app.incidents.models import Incident, IncidentUpdate
from app.policies import service as policies_service
from app.policies.models import Audience, PolicyCreate, PolicyKind, PolicyVersion, VersionCreate
from tests.factories import give_checklist, make_incident, make_school, make_user

ALL_NO = {
    "harmed_child": False,
    "criminal_offence": False,
    "risk_to_children": False,
    "unsuitable": False,
}


def years_ago(years: float):
    return utcnow() - timedelta(days=round(366 * years))


def close(db: Session, incident: Incident, years: float = 30) -> Incident:
    """Close the incident as the DSL would, then move its closing `years` into the past."""
    flows.update_incident(
        session=db,
        incident=incident,
        data=IncidentUpdate(status="closed", outcome="Resolved with the family."),
        actor=SYSTEM,
    )
    incident.closed_at = years_ago(years)
    db.add(incident)
    db.commit()
    return incident


def closed_incident(db: Session, years: float = 30, **overrides) -> Incident:
    return close(db, make_incident(db, **overrides), years)


def finished_checklist(db: Session, years: float = 30, user=None):
    user = user or make_user(db)
    run = give_checklist(db, user)
    run.completed_at = years_ago(years)
    run.completed_by_id = user.id
    db.add(run)
    db.commit()
    return run


def superseded_version(db: Session, years: float = 30) -> tuple[PolicyVersion, PolicyVersion]:
    """A staff policy whose version 1 (acknowledged by someone) was replaced `years` ago."""
    school = make_school(db)
    policy = policies_service.create_policy(
        session=db,
        school_id=school.id,
        data=PolicyCreate(
            title="Staff social media", kind=PolicyKind.other, audience=Audience.staff
        ),
        actor=SYSTEM,
    )
    approver = make_user(db, role=Role.slt)
    versions = []
    for text in ("First text.", "Second text."):
        version = policies_service.add_version(
            session=db,
            policy=policy,
            data=VersionCreate(
                body=text, effective_from=date(2020, 1, 1), review_due=date(2030, 1, 1)
            ),
            actor=SYSTEM,
        )
        policies_service.approve(
            session=db, policy=policy, version=version, approver=approver, actor=SYSTEM
        )
        policies_service.publish(session=db, policy=policy, version=version, actor=SYSTEM)
        if not versions:
            reader = make_user(db)
            policies_service.acknowledge(
                session=db, policy=policy, version=version, user=reader, actor=SYSTEM
            )
        versions.append(version)
    versions[1].published_at = years_ago(years)
    db.add(versions[1])
    db.commit()
    return versions[0], versions[1]
