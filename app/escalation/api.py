"""The escalation-rules API."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.auth.dependencies import require_scope, token_actor
from app.auth.models import ApiToken, Scope
from app.core.db import DbSession
from app.core.pagination import Page
from app.escalation import service
from app.escalation.models import EscalationRule, RuleIn, RulePublic

router = APIRouter(prefix="/escalation-rules", tags=["escalation"])


def rule_public(rule: EscalationRule) -> RulePublic:
    condition = service.condition_of(rule)
    return RulePublic.model_validate(
        {**rule.model_dump(), "condition": condition, "condition_in_words": condition.in_words()}
    )


@router.get("", operation_id="listEscalationRules", summary="The escalation rules")
def list_rules(
    session: DbSession, token: Annotated[ApiToken, Depends(require_scope(Scope.incidents_read))]
) -> Page[RulePublic]:
    rules = service.list_rules(session=session, school_id=token.school_id)
    return Page[RulePublic](data=[rule_public(r) for r in rules])


@router.post(
    "",
    operation_id="createEscalationRule",
    summary="Add an escalation rule",
    status_code=201,
    responses={409: {"description": "A rule with this key exists already"}},
)
def create_rule(
    request: Request,
    session: DbSession,
    token: Annotated[ApiToken, Depends(require_scope(Scope.incidents_write))],
    body: RuleIn,
) -> RulePublic:
    rule = service.save_rule(
        session=session, school_id=token.school_id, data=body, actor=token_actor(request)
    )
    session.commit()
    return rule_public(rule)
