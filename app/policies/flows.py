"""Where policies meet other domains: a new version re-issues the checklists linked to its kind."""

from sqlmodel import Session

from app.audit.service import Actor
from app.checklists import service as checklists_service
from app.policies import service
from app.policies.models import Audience, Policy, PolicyVersion


def publish(*, session: Session, policy: Policy, version: PolicyVersion, actor: Actor) -> int:
    """Publish, and give staff again the checklists tied to this kind of policy."""
    had_earlier = service.current_version(session=session, policy=policy) is not None
    service.publish(session=session, policy=policy, version=version, actor=actor)
    if policy.audience == Audience.staff and had_earlier:
        return checklists_service.reissue_for_policy(
            session=session, school_id=policy.school_id, policy_kind=policy.kind.value, actor=actor
        )
    return 0
