"""Policies and their lifecycle: draft → approved → published → superseded or retired."""

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, func, select

from app.audit.service import Actor, record_event
from app.auth.models import Role, User
from app.core.db import get_for_school
from app.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from app.core.types import utcnow
from app.people.models import Person, PersonKind
from app.policies.models import (
    Audience,
    ExemptionReason,
    PhoneExemption,
    Policy,
    PolicyAcknowledgement,
    PolicyCreate,
    PolicyKind,
    PolicyVersion,
    VersionCreate,
    VersionStatus,
)

APPROVERS = {Role.slt}
REVIEW_WARNING = timedelta(days=30)


def _audit(session: Session, actor: Actor, action: str, policy: Policy, **detail) -> None:
    record_event(
        session=session,
        actor=actor,
        action=action,
        school_id=policy.school_id,
        entity_type="policy",
        entity_id=policy.id,
        detail=detail,
    )


def get_policy(*, session: Session, school_id: int, policy_id: int) -> Policy:
    return get_for_school(session, Policy, policy_id, school_id, "policy")


def list_policies(*, session: Session, school_id: int) -> list[Policy]:
    return list(
        session.exec(
            select(Policy).where(Policy.school_id == school_id).order_by(Policy.title, Policy.id)
        ).all()
    )


def versions_of(*, session: Session, policy: Policy) -> list[PolicyVersion]:
    return list(
        session.exec(
            select(PolicyVersion)
            .where(PolicyVersion.policy_id == policy.id)
            .order_by(PolicyVersion.number)
        ).all()
    )


def get_version(*, session: Session, policy: Policy, number: int) -> PolicyVersion:
    version = session.exec(
        select(PolicyVersion).where(
            PolicyVersion.policy_id == policy.id, PolicyVersion.number == number
        )
    ).first()
    if version is None:
        raise NotFound(f"This policy has no version {number}.")
    return version


def current_version(*, session: Session, policy: Policy) -> PolicyVersion | None:
    return session.exec(
        select(PolicyVersion).where(
            PolicyVersion.policy_id == policy.id, PolicyVersion.status == VersionStatus.published
        )
    ).first()


def _check_body(body: str) -> None:
    from app.core.markdown import has_unsafe_markup

    if has_unsafe_markup(body):
        raise InvalidInput(
            "The text contains HTML such as scripts or frames. Write it in plain Markdown.",
            errors=[{"field": "body", "message": "raw HTML is not allowed"}],
        )


def create_policy(*, session: Session, school_id: int, data: PolicyCreate, actor: Actor) -> Policy:
    if data.phone_stance is not None and data.kind.value != "mobile_phone":
        raise InvalidInput(
            "Only a mobile phone policy has a phone stance.",
            errors=[{"field": "phone_stance", "message": "mobile_phone only"}],
        )
    policy = Policy(
        school_id=school_id,
        title=data.title.strip(),
        kind=data.kind,
        audience=data.audience,
        phone_stance=data.phone_stance,
    )
    session.add(policy)
    session.flush()
    _audit(session, actor, "policy.created", policy)
    return policy


def add_version(
    *, session: Session, policy: Policy, data: VersionCreate, actor: Actor
) -> PolicyVersion:
    """A new draft; the published version stays in force until this one is published."""
    _check_body(data.body)
    last = session.exec(
        select(func.max(PolicyVersion.number)).where(PolicyVersion.policy_id == policy.id)
    ).one()
    version = PolicyVersion(
        policy_id=policy.id,
        number=(last or 0) + 1,
        body=data.body,
        effective_from=data.effective_from,
        review_due=data.review_due,
        created_by_id=actor.user_id,
    )
    session.add(version)
    session.flush()
    _audit(session, actor, "policy.version_added", policy, number=version.number)
    return version


def update_draft(
    *, session: Session, policy: Policy, version: PolicyVersion, data: VersionCreate, actor: Actor
) -> PolicyVersion:
    if version.status != VersionStatus.draft:
        raise Conflict(
            f"Version {version.number} is {version.status.value} and cannot be edited. "
            "Add a new version to change the policy."
        )
    _check_body(data.body)
    version.body = data.body
    version.effective_from = data.effective_from
    version.review_due = data.review_due
    session.add(version)
    _audit(session, actor, "policy.version_edited", policy, number=version.number)
    return version


def approve(
    *, session: Session, policy: Policy, version: PolicyVersion, approver: User, actor: Actor
) -> PolicyVersion:
    if approver.role not in APPROVERS:
        raise PermissionDenied("Only senior leadership approve policy versions.")
    if version.status != VersionStatus.draft:
        raise Conflict(
            f"Version {version.number} is {version.status.value}; only a draft is approved."
        )
    version.status = VersionStatus.approved
    version.approved_by_id = approver.id
    version.approved_at = utcnow()
    session.add(version)
    _audit(session, actor, "policy.version_approved", policy, number=version.number)
    return version


def publish(
    *, session: Session, policy: Policy, version: PolicyVersion, actor: Actor
) -> PolicyVersion:
    """The version comes into force; the one before is superseded."""
    if version.status != VersionStatus.approved:
        raise Conflict(
            f"Version {version.number} is {version.status.value}: a version must be approved by "
            "senior leadership before it is published."
        )
    previous = current_version(session=session, policy=policy)
    if previous is not None:
        previous.status = VersionStatus.superseded
        session.add(previous)
    version.status = VersionStatus.published
    version.published_at = utcnow()
    policy.updated_at = version.published_at
    session.add_all([version, policy])
    session.flush()
    _audit(session, actor, "policy.version_published", policy, number=version.number)
    return version


def retire(*, session: Session, policy: Policy, actor: Actor) -> None:
    current = current_version(session=session, policy=policy)
    if current is None:
        raise Conflict("This policy has no published version to retire.")
    current.status = VersionStatus.retired
    policy.public_slug = None
    session.add_all([current, policy])
    _audit(session, actor, "policy.retired", policy, number=current.number)


def set_public(*, session: Session, policy: Policy, public: bool, actor: Actor) -> Policy:
    """Pupil and parent/carer policies can be read by anyone at a public address."""
    if public and policy.audience == Audience.staff:
        raise InvalidInput("Only a policy for pupils or parents and carers can be made public.")
    if public and current_version(session=session, policy=policy) is None:
        raise InvalidInput("Publish a version before making the policy public.")
    policy.public_slug = (policy.public_slug or secrets.token_urlsafe(12)) if public else None
    session.add(policy)
    _audit(session, actor, "policy.public" if public else "policy.private", policy)
    return policy


def public_policy(*, session: Session, slug: str) -> tuple[Policy, PolicyVersion]:
    policy = session.exec(select(Policy).where(Policy.public_slug == slug)).first()
    version = current_version(session=session, policy=policy) if policy else None
    if policy is None or version is None or policy.audience == Audience.staff:
        raise NotFound("There is no public policy at this address.")
    return policy, version


# Acknowledgements -------------------------------------------------------------------------------


def acknowledge(
    *, session: Session, policy: Policy, version: PolicyVersion, user: User, actor: Actor
) -> PolicyAcknowledgement:
    if version.status != VersionStatus.published:
        raise Conflict(
            f"Version {version.number} is no longer in force; read and acknowledge the current one."
        )
    if policy.audience != Audience.staff:
        raise InvalidInput("Only staff policies are acknowledged.")
    existing = session.exec(
        select(PolicyAcknowledgement).where(
            PolicyAcknowledgement.version_id == version.id, PolicyAcknowledgement.user_id == user.id
        )
    ).first()
    if existing:
        return existing
    ack = PolicyAcknowledgement(version_id=version.id, user_id=user.id, acknowledged_at=utcnow())
    session.add(ack)
    session.flush()
    _audit(session, actor, "policy.acknowledged", policy, number=version.number)
    return ack


@dataclass
class Waiting:
    policy: Policy
    version: PolicyVersion


def waiting_for(*, session: Session, user: User) -> list[Waiting]:
    """Published staff policies this person has not acknowledged yet (in two queries)."""
    rows = session.execute(
        select(Policy, PolicyVersion)
        .join(PolicyVersion, PolicyVersion.policy_id == Policy.id)
        .where(
            Policy.school_id == user.school_id,
            Policy.audience == Audience.staff,
            PolicyVersion.status == VersionStatus.published,
        )
        .order_by(Policy.title)
    ).all()
    done = set(
        session.exec(
            select(PolicyAcknowledgement.version_id).where(PolicyAcknowledgement.user_id == user.id)
        ).all()
    )
    return [Waiting(policy, version) for policy, version in rows if version.id not in done]


def acknowledgements(
    *, session: Session, policy: Policy, version: PolicyVersion
) -> list[tuple[User, datetime | None]]:
    """Every active member of staff, with when they acknowledged this version (or None)."""
    acks = dict(
        session.exec(
            select(PolicyAcknowledgement.user_id, PolicyAcknowledgement.acknowledged_at).where(
                PolicyAcknowledgement.version_id == version.id
            )
        ).all()
    )
    users = session.exec(
        select(User)
        .where(User.school_id == policy.school_id, User.is_active.is_(True))
        .order_by(User.display_name, User.id)
    ).all()
    return [(user, acks.get(user.id)) for user in users]


def remind(*, session: Session, policy: Policy, version: PolicyVersion, actor: Actor) -> int:
    missing = [
        u
        for u, at in acknowledgements(session=session, policy=policy, version=version)
        if at is None
    ]
    _audit(session, actor, "policy.reminded", policy, number=version.number, people=len(missing))
    return len(missing)


# Review -------------------------------------------------------------------------------------------


def reviews_due(*, session: Session, school_id: int, today: date) -> list[Waiting]:
    """Published versions whose review is due within 30 days, or overdue."""
    rows = session.execute(
        select(Policy, PolicyVersion)
        .join(PolicyVersion, PolicyVersion.policy_id == Policy.id)
        .where(
            Policy.school_id == school_id,
            PolicyVersion.status == VersionStatus.published,
            PolicyVersion.review_due <= today + REVIEW_WARNING,
        )
        .order_by(PolicyVersion.review_due)
    ).all()
    return [Waiting(policy, version) for policy, version in rows]


def newly_due_for_review(*, session: Session, school_id: int, now: datetime) -> list[Waiting]:
    """Versions to announce with `policy.review_due`; each is announced once."""
    due = [
        w
        for w in reviews_due(session=session, school_id=school_id, today=now.date())
        if w.version.review_notified_at is None
    ]
    for waiting in due:
        waiting.version.review_notified_at = now
        session.add(waiting.version)
    session.flush()
    return due


# Phone exemptions ---------------------------------------------------------------------------------


def exemptions(*, session: Session, policy: Policy) -> list[tuple[PhoneExemption, Person]]:
    return list(
        session.execute(
            select(PhoneExemption, Person)
            .join(Person, Person.id == PhoneExemption.person_id)
            .where(PhoneExemption.policy_id == policy.id)
            .order_by(Person.surname, Person.forename)
        ).all()
    )


def add_exemption(
    *,
    session: Session,
    policy: Policy,
    person_id: int,
    reason: ExemptionReason,
    note: str,
    actor: Actor,
) -> PhoneExemption:
    if policy.kind != PolicyKind.mobile_phone:
        raise InvalidInput("Exemptions belong to a mobile phone policy.")
    person = session.get(Person, person_id)
    if person is None or person.school_id != policy.school_id or person.kind != PersonKind.pupil:
        raise InvalidInput(
            "Choose a pupil on the school's roster.",
            errors=[{"field": "person_id", "message": "not a pupil of the school"}],
        )
    existing = session.exec(
        select(PhoneExemption).where(
            PhoneExemption.policy_id == policy.id, PhoneExemption.person_id == person_id
        )
    ).first()
    if existing:
        raise Conflict("This pupil already has an exemption; remove it to record a new one.")
    exemption = PhoneExemption(
        policy_id=policy.id, person_id=person_id, reason=reason, note=note.strip()[:500]
    )
    session.add(exemption)
    session.flush()
    _audit(session, actor, "policy.exemption_added", policy, exemption=exemption.id)
    return exemption


def remove_exemption(*, session: Session, policy: Policy, exemption_id: int, actor: Actor) -> None:
    exemption = session.get(PhoneExemption, exemption_id)
    if exemption is None or exemption.policy_id != policy.id:
        raise NotFound("No such exemption.")
    session.delete(exemption)
    _audit(session, actor, "policy.exemption_removed", policy, exemption=exemption_id)
