"""The policies API."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.auth.dependencies import require_scope, token_actor
from app.auth.models import ApiToken, Scope
from app.core.db import DbSession
from app.core.pagination import Page
from app.core.types import RowId
from app.policies import flows, service
from app.policies.models import (
    AcknowledgementPublic,
    Policy,
    PolicyCreate,
    PolicyPublic,
    VersionCreate,
    VersionPublic,
)

router = APIRouter(prefix="/policies", tags=["policies"])
ReadToken = Annotated[ApiToken, Depends(require_scope(Scope.policies_read))]
WriteToken = Annotated[ApiToken, Depends(require_scope(Scope.policies_write))]


def _public(session, policy: Policy) -> PolicyPublic:
    versions = service.versions_of(session=session, policy=policy)
    return PolicyPublic.model_validate(
        {
            **policy.model_dump(),
            "versions": [VersionPublic.model_validate(v.model_dump()) for v in versions],
        }
    )


@router.get("", operation_id="listPolicies", summary="Policies and their versions")
def list_policies(session: DbSession, token: ReadToken) -> Page[PolicyPublic]:
    policies = service.list_policies(session=session, school_id=token.school_id)
    return Page[PolicyPublic](data=[_public(session, p) for p in policies])


@router.post("", operation_id="createPolicy", summary="Add a policy", status_code=201)
def create_policy(
    request: Request, session: DbSession, token: WriteToken, body: PolicyCreate
) -> PolicyPublic:
    policy = service.create_policy(
        session=session, school_id=token.school_id, data=body, actor=token_actor(request)
    )
    session.commit()
    return _public(session, policy)


@router.post(
    "/{policy_id}/versions",
    operation_id="addPolicyVersion",
    summary="Add a draft version",
    status_code=201,
)
def add_version(
    request: Request, session: DbSession, token: WriteToken, policy_id: RowId, body: VersionCreate
) -> VersionPublic:
    policy = service.get_policy(session=session, school_id=token.school_id, policy_id=policy_id)
    version = service.add_version(
        session=session, policy=policy, data=body, actor=token_actor(request)
    )
    session.commit()
    return VersionPublic.model_validate(version.model_dump())


@router.post(
    "/{policy_id}/versions/{number}/publish",
    operation_id="publishPolicyVersion",
    summary="Publish an approved version",
    responses={409: {"description": "Only an approved version can be published"}},
)
def publish(
    request: Request, session: DbSession, token: WriteToken, policy_id: RowId, number: RowId
) -> VersionPublic:
    policy = service.get_policy(session=session, school_id=token.school_id, policy_id=policy_id)
    version = service.get_version(session=session, policy=policy, number=number)
    flows.publish(session=session, policy=policy, version=version, actor=token_actor(request))
    session.commit()
    return VersionPublic.model_validate(version.model_dump())


@router.get(
    "/{policy_id}/acknowledgements",
    operation_id="listPolicyAcknowledgements",
    summary="Who has acknowledged the version in force",
)
def acknowledgements(
    session: DbSession, token: ReadToken, policy_id: RowId
) -> Page[AcknowledgementPublic]:
    policy = service.get_policy(session=session, school_id=token.school_id, policy_id=policy_id)
    version = service.current_version(session=session, policy=policy)
    if version is None:
        return Page[AcknowledgementPublic](data=[])
    rows = service.acknowledgements(session=session, policy=policy, version=version)
    return Page[AcknowledgementPublic](
        data=[
            AcknowledgementPublic(user_id=user.id, version=version.number, acknowledged_at=at)
            for user, at in rows
        ]
    )
