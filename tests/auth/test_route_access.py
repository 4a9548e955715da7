"""Deny by default: every route of the app, walked as each kind of visitor.

A new route fails this test until it is added to the table in tests/auth/access.py with who
may use it.
"""

import re

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from app.auth.models import Role, Scope
from tests.auth.access import ACCESS, EVERYONE, SIGNED_IN
from tests.factories import bearer, make_token, make_user, page_csrf, sign_in


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
            response = client.request(method, _url(path), headers=bearer(raw))
            expected_forbidden = rule != scope
            assert (response.status_code == 403) == expected_forbidden, (scope, method, path)
