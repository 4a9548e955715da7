"""The rules page: the DSL lists, edits, disables and adds escalation rules in plain words."""

from typing import Annotated

from fastapi import Form, Request
from starlette.concurrency import run_in_threadpool

from app.auth.dependencies import PageActor
from app.core.db import DbSession
from app.core.errors import DomainError
from app.core.routing import page_router, see_other
from app.core.templating import render
from app.escalation import service
from app.escalation.conditions import FIELDS, OPERATOR_WORDS
from app.incidents.dependencies import SafeguardingLead
from app.incidents.models import Severity

router = page_router(prefix="/admin/rules")

CLAUSE_ROWS = 4


def _rules_page(request, session, user, *, status_code=200, **context):
    rules = service.list_rules(session=session, school_id=user.school_id)
    context = {
        "rules": [(rule, service.condition_of(rule)) for rule in rules],
        "caught": service.caught_by_rule(session=session, school_id=user.school_id),
        "fields": {
            name: (label, [v.value for v in values] if values else [], ops)
            for name, (label, values, ops) in FIELDS.items()
        },
        "operator_words": {op.value: words for op, words in OPERATOR_WORDS.items()},
        "severities": list(Severity),
        "clause_rows": CLAUSE_ROWS,
        **context,
    }
    return render(request, "escalation/rules.html", context, status_code=status_code)


@router.get("")
def rules_page(request: Request, session: DbSession, user: SafeguardingLead, notice: str = ""):
    return _rules_page(
        request, session, user, notice="The rule was saved." if notice == "saved" else ""
    )


def _form_values(form) -> dict:
    clauses = []
    for n in range(CLAUSE_ROWS):
        field = str(form.get(f"field_{n}", "")).strip()
        if not field:
            continue
        raw = str(form.get(f"value_{n}", ""))
        values = [v.strip().replace(" ", "_") for v in raw.split(",") if v.strip()]
        clauses.append(
            {"field": field, "op": str(form.get(f"op_{n}", "")), "value": values or None}
        )
    actions = [line.strip() for line in str(form.get("required_actions", "")).splitlines()]
    return {
        "key": str(form.get("key", "")).strip(),
        "name": str(form.get("name", "")),
        "condition": {"match": str(form.get("match", "all")), "clauses": clauses},
        "severity": str(form.get("severity", "")),
        "required_actions": [a for a in actions if a],
        "notify": form.get("notify") == "true",
        "is_active": form.get("is_active") == "true",
    }


async def _save(request: Request, session, user, actor, rule_id: int | None):
    values = _form_values(await request.form())
    # The database's work runs in a thread: waiting for it must not stop the server.
    return await run_in_threadpool(_save_values, request, session, user, actor, rule_id, values)


def _save_values(request: Request, session, user, actor, rule_id: int | None, values: dict):
    try:
        rule = None
        if rule_id is not None:
            rule = service.get_rule(session=session, school_id=user.school_id, rule_id=rule_id)
            values["key"] = rule.key
        data = service.parse_rule(values)
        rule = service.save_rule(
            session=session, school_id=user.school_id, data=data, actor=actor, rule=rule
        )
    except DomainError as exc:
        session.rollback()
        return _rules_page(
            request,
            session,
            user,
            status_code=exc.status_code,
            error=exc.detail,
            error_rule=rule_id or "new",
        )
    session.commit()
    return see_other(request, f"/admin/rules?notice=saved#rule-{rule.id}")


@router.post("")
async def add_rule(request: Request, session: DbSession, user: SafeguardingLead, actor: PageActor):
    return await _save(request, session, user, actor, None)


@router.post("/{rule_id}")
async def edit_rule(
    request: Request, session: DbSession, user: SafeguardingLead, actor: PageActor, rule_id: int
):
    return await _save(request, session, user, actor, rule_id)


@router.post("/{rule_id}/active")
def set_active(
    request: Request,
    session: DbSession,
    user: SafeguardingLead,
    actor: PageActor,
    rule_id: int,
    is_active: Annotated[bool, Form()] = False,
):
    rule = service.get_rule(session=session, school_id=user.school_id, rule_id=rule_id)
    data = service.parse_rule(
        {
            **rule.model_dump(
                include={"key", "name", "condition", "severity", "required_actions", "notify"}
            ),
            "is_active": is_active,
        }
    )
    service.save_rule(session=session, school_id=user.school_id, data=data, actor=actor, rule=rule)
    session.commit()
    return see_other(request, f"/admin/rules?notice=saved#rule-{rule.id}")
