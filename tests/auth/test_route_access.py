"""Deny by default: every route of the app, walked as each kind of visitor.

A new route fails this test until it is added to the table below with who may use it.
"""

import re

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from app.auth.models import Role, Scope
from tests.factories import make_token, make_user, page_csrf, sign_in

EVERYONE = "public"
SIGNED_IN = "any signed-in browser, before or after the second factor"
ALL_ROLES = frozenset(Role)
ADMIN = frozenset({Role.admin})
LEADERS = frozenset({Role.dsl, Role.deputy_dsl, Role.slt})
SAFEGUARDING = frozenset({Role.dsl, Role.deputy_dsl})
POLICY_LEADS = frozenset({Role.slt, Role.dsl, Role.deputy_dsl})
DSL_ONLY = frozenset({Role.dsl})

ACCESS: dict[tuple[str, str], object] = {
    ("GET", "/api/openapi.json"): EVERYONE,
    ("GET", "/api/docs"): EVERYONE,
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/readyz"): EVERYONE,
    ("GET", "/login"): EVERYONE,
    ("POST", "/login"): EVERYONE,
    ("GET", "/login/second-factor"): SIGNED_IN,
    ("POST", "/login/second-factor"): SIGNED_IN,
    ("GET", "/account/second-factor"): SIGNED_IN,
    ("POST", "/account/second-factor"): SIGNED_IN,
    ("GET", "/logout"): SIGNED_IN,
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/"): ALL_ROLES,
    ("GET", "/account"): ALL_ROLES,
    ("POST", "/account/password"): ALL_ROLES,
    ("GET", "/admin/users"): ADMIN,
    ("POST", "/admin/users"): ADMIN,
    ("POST", "/admin/users/{user_id}"): ADMIN,
    ("POST", "/admin/users/{user_id}/second-factor/reset"): ADMIN,
    ("POST", "/admin/users/{user_id}/password"): ADMIN,
    ("GET", "/admin/tokens"): ADMIN,
    ("POST", "/admin/tokens"): ADMIN,
    ("POST", "/admin/tokens/{token_id}/revoke"): ADMIN,
    ("GET", "/admin/people"): ADMIN,
    ("GET", "/admin/people/import"): ADMIN,
    ("GET", "/admin/people/import/template.csv"): ADMIN,
    ("POST", "/admin/people/import"): ADMIN,
    ("POST", "/admin/people/import/{import_id}/apply"): ADMIN,
    ("POST", "/admin/people/import/{import_id}/discard"): ADMIN,
    ("GET", "/checklists"): ALL_ROLES,
    ("GET", "/checklists/runs/{run_id}"): ALL_ROLES,
    ("POST", "/checklists/runs/{run_id}/items/{item_id}"): ALL_ROLES,
    ("POST", "/checklists/runs/{run_id}/finish"): ALL_ROLES,
    ("GET", "/checklists/oversight"): LEADERS,
    ("GET", "/checklists/oversight.csv"): LEADERS,
    ("POST", "/checklists/oversight/remind"): LEADERS,
    ("GET", "/checklists/assign"): LEADERS,
    ("POST", "/checklists/assign"): LEADERS,
    ("GET", "/checklists/templates/new"): LEADERS,
    ("POST", "/checklists/templates/new"): LEADERS,
    ("GET", "/api/v1/checklists"): Scope.checklists_read,
    ("GET", "/api/v1/checklist-runs"): Scope.checklists_read,
    ("POST", "/api/v1/checklist-runs"): Scope.checklists_write,
    ("PUT", "/api/v1/checklist-runs/{run_id}/items/{item_id}"): Scope.checklists_write,
    ("GET", "/report"): ALL_ROLES,
    ("POST", "/report"): ALL_ROLES,
    ("GET", "/incidents"): ALL_ROLES,
    ("GET", "/incidents/{incident_id}"): SAFEGUARDING,
    ("POST", "/incidents/{incident_id}/update"): SAFEGUARDING,
    ("POST", "/incidents/{incident_id}/entries"): SAFEGUARDING,
    ("POST", "/incidents/{incident_id}/harm-test"): SAFEGUARDING,
    ("POST", "/incidents/{incident_id}/playbook/{item_id}"): SAFEGUARDING,
    ("POST", "/incidents/{incident_id}/evidence"): SAFEGUARDING,
    ("GET", "/incidents/{incident_id}/evidence/{evidence_id}"): SAFEGUARDING,
    ("GET", "/incidents/{incident_id}/chronology"): SAFEGUARDING,
    ("GET", "/contacts"): SAFEGUARDING,
    ("POST", "/contacts/{contact_id}"): SAFEGUARDING,
    ("POST", "/incidents/{incident_id}/people"): SAFEGUARDING,
    ("GET", "/patterns"): SAFEGUARDING,
    ("GET", "/admin/retention"): SAFEGUARDING,
    ("POST", "/admin/retention/rules/{record_type}"): SAFEGUARDING,
    ("POST", "/admin/retention/holds"): SAFEGUARDING,
    ("POST", "/admin/retention/{kind}/{record_id}/keep"): SAFEGUARDING,
    ("POST", "/admin/retention/{kind}/{record_id}/hold"): SAFEGUARDING,
    ("POST", "/admin/retention/{kind}/{record_id}/release"): DSL_ONLY,
    ("GET", "/admin/retention/{kind}/{record_id}/delete"): DSL_ONLY,
    ("POST", "/admin/retention/{kind}/{record_id}/delete"): DSL_ONLY,
    ("GET", "/admin/rules"): SAFEGUARDING,
    ("POST", "/admin/rules"): SAFEGUARDING,
    ("POST", "/admin/rules/{rule_id}"): SAFEGUARDING,
    ("POST", "/admin/rules/{rule_id}/active"): SAFEGUARDING,
    ("GET", "/api/v1/escalation-rules"): Scope.incidents_read,
    ("POST", "/api/v1/escalation-rules"): Scope.incidents_write,
    ("GET", "/admin/webhooks"): ADMIN,
    ("POST", "/admin/webhooks"): ADMIN,
    ("POST", "/admin/webhooks/{endpoint_id}/rotate"): ADMIN,
    ("POST", "/admin/webhooks/{endpoint_id}/test"): ADMIN,
    ("POST", "/admin/webhooks/{endpoint_id}/active"): ADMIN,
    ("POST", "/admin/webhooks/deliveries/{message_id}/retry"): ADMIN,
    ("GET", "/api/v1/webhook-endpoints"): Scope.webhooks_admin,
    ("POST", "/api/v1/webhook-endpoints"): Scope.webhooks_admin,
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/test"): Scope.webhooks_admin,
    ("GET", "/api/v1/webhook-endpoints/{endpoint_id}/deliveries"): Scope.webhooks_admin,
    ("POST", "/api/v1/webhook-deliveries/{message_id}/retry"): Scope.webhooks_admin,
    ("GET", "/policies"): ALL_ROLES,
    ("GET", "/policies/new"): POLICY_LEADS,
    ("POST", "/policies/new"): POLICY_LEADS,
    ("GET", "/policies/{policy_id}"): ALL_ROLES,
    ("POST", "/policies/{policy_id}/versions"): POLICY_LEADS,
    ("POST", "/policies/{policy_id}/versions/{number}"): POLICY_LEADS,
    ("POST", "/policies/{policy_id}/versions/{number}/approve"): POLICY_LEADS,
    ("POST", "/policies/{policy_id}/versions/{number}/publish"): POLICY_LEADS,
    ("POST", "/policies/{policy_id}/acknowledge"): ALL_ROLES,
    ("POST", "/policies/{policy_id}/public"): POLICY_LEADS,
    ("POST", "/policies/{policy_id}/remind"): POLICY_LEADS,
    ("GET", "/policies/{policy_id}/acknowledgements.csv"): POLICY_LEADS,
    ("GET", "/policies/{policy_id}/diff"): POLICY_LEADS,
    ("POST", "/policies/{policy_id}/exemptions"): POLICY_LEADS,
    ("POST", "/policies/{policy_id}/exemptions/{exemption_id}/remove"): POLICY_LEADS,
    ("GET", "/public/policies/{slug}"): EVERYONE,
    ("GET", "/dashboard"): LEADERS,
    ("GET", "/dashboard/governors-report"): LEADERS,
    ("GET", "/dashboard/{chart}.csv"): LEADERS,
    ("GET", "/api/v1/policies"): Scope.policies_read,
    ("POST", "/api/v1/policies"): Scope.policies_write,
    ("POST", "/api/v1/policies/{policy_id}/versions"): Scope.policies_write,
    ("POST", "/api/v1/policies/{policy_id}/versions/{number}/publish"): Scope.policies_write,
    ("GET", "/api/v1/policies/{policy_id}/acknowledgements"): Scope.policies_read,
    ("GET", "/api/v1/incidents"): Scope.incidents_read,
    ("POST", "/api/v1/incidents"): Scope.incidents_write,
    ("GET", "/api/v1/incidents/{incident_id}"): Scope.incidents_read,
    ("PATCH", "/api/v1/incidents/{incident_id}"): Scope.incidents_write,
    ("GET", "/api/v1/incidents/{incident_id}/timeline"): Scope.incidents_read,
    ("POST", "/api/v1/incidents/{incident_id}/timeline"): Scope.incidents_write,
    ("POST", "/api/v1/incidents/{incident_id}/evidence"): Scope.incidents_write,
    ("GET", "/api/v1/people"): Scope.people_read,
    ("PUT", "/api/v1/people"): Scope.people_write,
    ("GET", "/api/v1/people/{person_id}"): Scope.people_read,
    ("GET", "/api/v1/checklist-runs/{run_id}"): Scope.checklists_read,
}


def _routes(app) -> list[tuple[str, str]]:
    found = []
    for route in iter_route_contexts(app.routes):
        methods = route.methods or set()  # the static files mount has none
        found += [(method, route.path) for method in methods if method != "HEAD"]
    # Sign-out last, so walking it does not end the walk.
    return sorted(found, key=lambda r: (r[1] == "/logout", r[0] == "POST", r[1]))


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "999999", path)


def _call(client: TestClient, method: str, path: str, csrf: str):
    if method == "GET":
        return client.get(_url(path))
    return client.request(method, _url(path), data={"csrf_token": csrf})


def test_every_route_is_classified(app):
    assert set(_routes(app)) == set(ACCESS)


def _is_login_redirect(response) -> bool:
    return response.status_code == 303 and response.headers["location"] == "/login"


def test_anonymous_visitors_reach_only_public_routes(app, anon):
    csrf = page_csrf(anon, "/login")
    for method, path in _routes(app):
        response = _call(anon, method, path, csrf)
        rule = ACCESS[(method, path)]
        if rule == EVERYONE:
            assert response.status_code not in (401, 403), (method, path)
        elif isinstance(rule, Scope):
            assert response.status_code == 401, (method, path)
        else:
            assert _is_login_redirect(response), (method, path, response.status_code)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_reaches_only_its_routes(app, db, role):
    user = make_user(db, role=role)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        sign_in(client, user)
        csrf = page_csrf(client, "/account")
        for method, path in _routes(app):
            response = _call(client, method, path, csrf)
            rule = ACCESS[(method, path)]
            where = (role.value, method, path, response.status_code)
            if isinstance(rule, Scope):
                assert response.status_code == 401, where  # a session is no API credential
            elif rule in (EVERYONE, SIGNED_IN) or role in rule:
                assert response.status_code != 403 and not _is_login_redirect(response), where
            else:
                assert response.status_code == 403, where


def test_unsafe_page_requests_without_csrf_are_refused_for_signed_in_users(app, db):
    user = make_user(db, role=Role.admin)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        sign_in(client, user)
        for method, path in _routes(app):
            if method == "GET" or path.startswith("/api/"):
                continue
            response = client.request(method, _url(path), data={})
            assert response.status_code == 403, (method, path)
            assert "This form has expired" in response.text


def test_tokens_reach_only_what_their_scopes_allow(app, db, client):
    for scope in Scope:
        raw, _ = make_token(db, scope, name=f"only {scope.value}")
        for method, path in _routes(app):
            rule = ACCESS[(method, path)]
            if not isinstance(rule, Scope):
                continue
            response = client.request(
                method, _url(path), headers={"Authorization": f"Bearer {raw}"}
            )
            expected_forbidden = rule != scope
            assert (response.status_code == 403) == expected_forbidden, (scope, method, path)
