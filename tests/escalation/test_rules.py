"""Escalation rules: the defaults fire as DESIGN.md section 6 says, once per incident, with
their consequences in the same transaction; rules are data the DSL edits safely."""

import pytest
from sqlmodel import select

from app.audit.service import SYSTEM
from app.auth.models import Role, Scope
from app.checklists import service as checklists_service
from app.core.errors import InvalidInput
from app.escalation import service
from app.escalation.models import Escalation, EscalationRule
from app.incidents import flows
from app.incidents.models import IncidentStatus, IncidentUpdate, LadoHarmTest, TimelineKind
from tests.factories import bearer, make_incident, make_token, make_user, page_csrf, sign_in


def _fired(db, incident) -> list[str]:
    rows = service.escalations_of(session=db, incident=incident)
    return sorted(rule.key for _, rule in rows)


@pytest.mark.parametrize(
    ("overrides", "keys", "severity"),
    [
        (
            {"offender_type": "staff", "suspected_criminal_offence": True},
            ["staff-criminal-offence"],
            "critical",
        ),
        ({"content_flags": ["indecent_image"]}, ["indecent-imagery"], "critical"),
        ({"content_flags": ["hate"]}, ["harmful-content"], "high"),
        ({"offender_type": "pupil"}, ["pupil-involved"], "medium"),
        (
            {"target_type": "pupil", "content_flags": ["threatening"]},
            ["harmful-content", "pupil-involved"],
            "high",
        ),
        ({}, [], "low"),
    ],
)
def test_default_rules_fire_on_report(db, overrides, keys, severity):
    incident = make_incident(db, **overrides)
    assert _fired(db, incident) == keys
    assert incident.severity.value == severity
    expected_status = IncidentStatus.escalated if keys else IncidentStatus.open
    assert incident.status == expected_status


def test_rules_fire_on_update_once_each(db):
    incident = make_incident(db)
    flows.update_incident(
        session=db, incident=incident, data=IncidentUpdate(removal_requested=True), actor=SYSTEM
    )
    assert _fired(db, incident) == []
    flows.update_incident(
        session=db, incident=incident, data=IncidentUpdate(removal_refused=True), actor=SYSTEM
    )
    assert _fired(db, incident) == ["removal-refused"]
    flows.update_incident(
        session=db, incident=incident, data=IncidentUpdate(title="Still refused"), actor=SYSTEM
    )
    assert len(db.exec(select(Escalation)).all()) == 1


def test_the_lado_rule_follows_the_harm_test(db):
    incident = make_incident(db, offender_type="staff", category="staff_conduct")
    flows.update_incident(
        session=db,
        incident=incident,
        data=IncidentUpdate(lado_harm_test=LadoHarmTest()),
        actor=SYSTEM,
    )
    assert _fired(db, incident) == []
    flows.update_incident(
        session=db,
        incident=incident,
        data=IncidentUpdate(lado_harm_test=LadoHarmTest(harmed_child=True)),
        actor=SYSTEM,
    )
    assert _fired(db, incident) == ["lado-harm-test"] and incident.severity.value == "critical"


def test_an_escalation_adds_actions_and_a_chronology_entry(db):
    incident = make_incident(db, content_flags=["indecent_image"])
    playbook = checklists_service.playbook_of(session=db, incident_id=incident.id)
    added = [item.text for item in playbook.items if item.run_id == playbook.run.id]
    assert "Contact the police." in added and len(playbook.items) == 11 + 3
    entry = next(
        e
        for e in flows.service.timeline(session=db, incident=incident)
        if e.kind == TimelineKind.escalation
    )
    assert "A nude or sexual image of a child" in entry.text
    assert entry.rationale == "the content includes any of indecent image"


def test_severity_is_never_lowered_by_a_rule(db):
    incident = make_incident(db)
    flows.update_incident(
        session=db, incident=incident, data=IncidentUpdate(severity="critical"), actor=SYSTEM
    )
    flows.update_incident(
        session=db, incident=incident, data=IncidentUpdate(offender_type="pupil"), actor=SYSTEM
    )
    assert _fired(db, incident) == ["pupil-involved"]
    assert incident.severity.value == "critical"


def test_a_rule_that_is_off_does_not_fire(db):
    make_user(db)
    rule = db.exec(select(EscalationRule).where(EscalationRule.key == "pupil-involved")).one()
    rule.is_active = False
    db.add(rule)
    incident = make_incident(db, offender_type="pupil")
    assert _fired(db, incident) == []


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"match": "all", "clauses": []}, "at least 1 item"),
        (
            {"match": "all", "clauses": [{"field": "shoe_size", "op": "is", "value": "9"}]},
            "unknown field",
        ),
        (
            {"match": "all", "clauses": [{"field": "platform", "op": "is", "value": "myspace"}]},
            "is not a value of platform",
        ),
        (
            {"match": "all", "clauses": [{"field": "platform", "op": "is_true"}]},
            "cannot use the operator",
        ),
        ({"match": "some", "clauses": [{"field": "removal_refused", "op": "is_true"}]}, "match"),
        (
            {
                "match": "all",
                "clauses": [{"field": "platform", "op": "is", "value": ["x", "tiktok"]}],
            },
            "exactly one value",
        ),
    ],
)
def test_bad_conditions_are_refused(condition, message):
    with pytest.raises(InvalidInput) as error:
        service.parse_rule({"key": "k", "name": "N", "condition": condition, "severity": "high"})
    assert message in str(error.value.errors)


def test_the_dsl_edits_adds_and_turns_off_rules_on_the_page(client, db):
    sign_in(client, make_user(db, role=Role.dsl))
    page = client.get("/admin/rules").text
    assert "A pupil is responsible or targeted" in page
    assert "who seems responsible is pupil or who is targeted is pupil" in page
    token = page_csrf(client, "/admin/rules")
    added = client.post(
        "/admin/rules",
        data={
            "csrf_token": token,
            "key": "tiktok-petition",
            "name": "Petitions on TikTok",
            "match": "all",
            "field_0": "platform",
            "op_0": "is",
            "value_0": "tiktok",
            "field_1": "category",
            "op_1": "is",
            "value_1": "online petition",
            "severity": "high",
            "required_actions": "Tell the headteacher.\n\nCall POSH.",
            "notify": "true",
            "is_active": "true",
        },
    )
    assert added.status_code == 303
    rule = db.exec(select(EscalationRule).where(EscalationRule.key == "tiktok-petition")).one()
    assert rule.required_actions == ["Tell the headteacher.", "Call POSH."]
    incident = make_incident(db, category="online_petition")
    assert "tiktok-petition" in _fired(db, incident)
    assert incident.reference in client.get("/admin/rules").text  # caught by the rule
    off = client.post(
        f"/admin/rules/{rule.id}/active", data={"csrf_token": token, "is_active": "false"}
    )
    assert off.status_code == 303
    db.refresh(rule)
    assert rule.is_active is False


def test_bad_rule_input_on_the_page_writes_nothing(client, db):
    sign_in(client, make_user(db, role=Role.deputy_dsl))
    token = page_csrf(client, "/admin/rules")
    before = len(db.exec(select(EscalationRule)).all())
    for data, message in [
        (
            {"key": "Bad Key!", "name": "x", "field_0": "platform", "op_0": "is", "value_0": "x"},
            "key",
        ),
        (
            {"key": "ok", "name": "x", "field_0": "platform", "op_0": "is", "value_0": "bebo"},
            "is not a value of platform",
        ),
        ({"key": "ok", "name": "x"}, "at least 1 item"),
        (
            {"key": "pupil-involved", "name": "x", "field_0": "removal_refused", "op_0": "is_true"},
            "exists already",
        ),
    ]:
        response = client.post(
            "/admin/rules", data={"csrf_token": token, "severity": "high", "match": "all", **data}
        )
        assert response.status_code in (409, 422), data
        assert message in response.text, data
    assert len(db.exec(select(EscalationRule)).all()) == before


def test_the_escalation_rules_api(client, db):
    raw, _ = make_token(db, Scope.incidents_read, Scope.incidents_write)
    headers = bearer(raw)
    listed = client.get("/api/v1/escalation-rules", headers=headers).json()
    assert {r["key"] for r in listed["data"]} >= {"lado-harm-test", "removal-refused"}
    body = {
        "key": "snapchat-threats",
        "name": "Threats on Snapchat",
        "severity": "high",
        "condition": {
            "match": "all",
            "clauses": [
                {"field": "platform", "op": "is", "value": "snapchat"},
                {"field": "content_flags", "op": "includes_any", "value": ["threatening"]},
            ],
        },
        "required_actions": ["Consider the police."],
    }
    created = client.post("/api/v1/escalation-rules", json=body, headers=headers)
    assert created.status_code == 201
    assert created.json()["condition_in_words"] == (
        "the platform is snapchat and the content includes any of threatening"
    )
    bad = client.post(
        "/api/v1/escalation-rules",
        headers=headers,
        json={**body, "key": "other", "severity": "apocalyptic"},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


def test_the_incident_page_names_the_rules_that_escalated_it(client, db):
    incident = make_incident(db, content_flags=["hate"])
    sign_in(client, make_user(db, role=Role.dsl))
    page = client.get(f"/incidents/{incident.id}").text
    assert "Escalated by" in page and "Sexual, sexist, threatening, abusive or hate content" in page
