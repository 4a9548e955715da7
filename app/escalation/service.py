"""Escalation rules and their evaluation. The only module that queries rules and escalations."""

from dataclasses import dataclass

from pydantic import ValidationError
from sqlmodel import Session, select

from app.audit.service import Actor, record_event
from app.core.db import get_for_school
from app.core.errors import Conflict, InvalidInput
from app.core.types import utcnow
from app.escalation.conditions import Condition
from app.escalation.library import DEFAULT_RULES
from app.escalation.models import Escalation, EscalationRule, RuleIn
from app.incidents.models import Incident


def install_default_rules(*, session: Session, school_id: int) -> int:
    have = set(
        session.exec(select(EscalationRule.key).where(EscalationRule.school_id == school_id)).all()
    )
    added = 0
    for rule in DEFAULT_RULES:
        if rule["key"] not in have:
            session.add(EscalationRule(school_id=school_id, **rule))
            added += 1
    session.flush()
    return added


def condition_of(rule: EscalationRule) -> Condition:
    return Condition.model_validate(rule.condition)


def list_rules(
    *, session: Session, school_id: int, active_only: bool = False
) -> list[EscalationRule]:
    query = select(EscalationRule).where(EscalationRule.school_id == school_id)
    if active_only:
        query = query.where(EscalationRule.is_active.is_(True))
    return list(session.exec(query.order_by(EscalationRule.name, EscalationRule.id)).all())


def get_rule(*, session: Session, school_id: int, rule_id: int) -> EscalationRule:
    return get_for_school(session, EscalationRule, rule_id, school_id, "rule")


def save_rule(
    *,
    session: Session,
    school_id: int,
    data: RuleIn,
    actor: Actor,
    rule: EscalationRule | None = None,
) -> EscalationRule:
    """Add a rule, or change one (its key stays)."""
    actions = [a.strip() for a in data.required_actions if a.strip()]
    if any(len(a) > 300 for a in actions):
        raise InvalidInput("Each required action must be 300 characters or fewer.")
    if rule is None:
        taken = session.exec(
            select(EscalationRule).where(
                EscalationRule.school_id == school_id, EscalationRule.key == data.key
            )
        ).first()
        if taken:
            raise Conflict(f"A rule with the key {data.key!r} exists already.")
        rule = EscalationRule(
            school_id=school_id, key=data.key, name="", condition={}, severity=data.severity
        )
    rule.name = data.name.strip()
    rule.condition = data.condition.model_dump(mode="json")
    rule.severity = data.severity
    rule.required_actions = actions
    rule.notify = data.notify
    rule.is_active = data.is_active
    rule.updated_at = utcnow()
    session.add(rule)
    session.flush()
    record_event(
        session=session,
        actor=actor,
        action="escalation_rule.saved",
        school_id=school_id,
        entity_type="escalation_rule",
        entity_id=rule.id,
        detail={"active": rule.is_active},
    )
    return rule


def parse_rule(values: dict) -> RuleIn:
    """RuleIn from untrusted input, with every problem named."""
    try:
        return RuleIn.model_validate(values)
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"]),
                "message": e["msg"].removeprefix("Value error, "),
            }
            for e in exc.errors()
        ]
        first = errors[0]
        raise InvalidInput(
            f"The rule is not valid: {first['field']}: {first['message']}.", errors=errors
        ) from None


@dataclass
class Fired:
    rule: EscalationRule
    escalation: Escalation


def evaluate(*, session: Session, incident: Incident) -> list[Fired]:
    """Fire every active rule that matches and has not fired for this incident before.

    Runs inside the caller's transaction; the caller records the consequences.
    """
    rules = list_rules(session=session, school_id=incident.school_id, active_only=True)
    fired_before = set(
        session.exec(select(Escalation.rule_id).where(Escalation.incident_id == incident.id)).all()
    )
    fired = []
    for rule in rules:
        if rule.id in fired_before:
            continue
        condition = condition_of(rule)
        if not condition.matches(incident):
            continue
        escalation = Escalation(
            incident_id=incident.id,
            rule_id=rule.id,
            created_at=utcnow(),
            reason=condition.in_words()[:1000],
        )
        session.add(escalation)
        fired.append(Fired(rule, escalation))
    session.flush()
    return fired


def caught_by_rule(
    *, session: Session, school_id: int
) -> dict[int, list[tuple[Escalation, Incident]]]:
    """For each rule, the incidents it escalated (newest first), in one query."""
    rows = session.execute(
        select(Escalation, Incident)
        .join(Incident, Incident.id == Escalation.incident_id)
        .where(Incident.school_id == school_id)
        .order_by(Escalation.created_at.desc(), Escalation.id.desc())
    ).all()
    caught: dict[int, list] = {}
    for escalation, incident in rows:
        caught.setdefault(escalation.rule_id, []).append((escalation, incident))
    return caught


def escalations_of(
    *, session: Session, incident: Incident
) -> list[tuple[Escalation, EscalationRule]]:
    return list(
        session.execute(
            select(Escalation, EscalationRule)
            .join(EscalationRule, EscalationRule.id == Escalation.rule_id)
            .where(Escalation.incident_id == incident.id)
            .order_by(Escalation.id)
        ).all()
    )
