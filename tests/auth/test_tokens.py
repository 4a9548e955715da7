"""API tokens: made on a page or by the CLI, shown once, stored hashed, scoped and revocable."""

import re
from datetime import timedelta

from sqlmodel import select

from app.auth.models import ApiToken, Role, Scope
from app.core.security import sha256_hex
from app.core.types import utcnow
from tests.factories import bearer, make_token, make_user, page_csrf, sign_in


def _make_on_page(client, **data):
    form = {"name": "Wonde sync", "scopes": ["people:read", "people:write"], **data}
    form["csrf_token"] = page_csrf(client, "/admin/tokens")
    return client.post("/admin/tokens", data=form)


def test_admin_makes_a_token_that_is_shown_once_and_stored_hashed(client, db):
    sign_in(client, make_user(db, role=Role.admin))
    response = _make_on_page(client)
    assert response.status_code == 201
    raw = re.search(r'<code id="new-token">(hvn_[A-Za-z0-9_-]+)</code>', response.text).group(1)
    assert len(raw) >= 4 + 22  # at least 128 bits after the prefix
    token = db.exec(select(ApiToken)).one()
    assert token.token_hash == sha256_hex(raw) and raw not in token.token_hash
    assert token.scopes == ["people:read", "people:write"]
    assert raw not in client.get("/admin/tokens").text
    assert raw[:12] in client.get("/admin/tokens").text


def test_token_needs_a_name_and_a_scope(client, db):
    sign_in(client, make_user(db, role=Role.admin))
    assert _make_on_page(client, scopes=[]).status_code == 422
    assert _make_on_page(client, name="").status_code == 422
    bad_scope = _make_on_page(client, scopes=["everything"])
    assert bad_scope.status_code == 422
    assert "scopes" in bad_scope.text
    past = _make_on_page(client, expires_on="2000-01-01")
    assert past.status_code == 422 and "must be in the future" in past.text
    junk = _make_on_page(client, expires_on="soon")
    assert junk.status_code == 422 and "2027-07-31" in junk.text
    assert db.exec(select(ApiToken)).all() == []


def test_a_token_reads_what_its_scope_allows(client, db):
    raw, token = make_token(db, Scope.people_read)
    response = client.get("/api/v1/people", headers=bearer(raw))
    assert response.status_code == 200
    db.refresh(token)
    assert token.last_used_at is not None


def test_a_token_without_the_scope_is_forbidden(client, db):
    raw, _ = make_token(db, Scope.incidents_read)
    response = client.get("/api/v1/people", headers=bearer(raw))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "people:read" in response.json()["detail"]


def test_missing_malformed_and_unknown_tokens_are_unauthenticated(client, db):
    for headers in [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer hvn_not-a-real-token"},
    ]:
        response = client.get("/api/v1/people", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["status"] == 401


def test_revoked_token_stops_working(client, db):
    raw, token = make_token(db, Scope.people_read)
    sign_in(client, make_user(db, role=Role.admin))
    response = client.post(
        f"/admin/tokens/{token.id}/revoke", data={"csrf_token": page_csrf(client, "/admin/tokens")}
    )
    assert response.status_code == 303
    assert client.get("/api/v1/people", headers=bearer(raw)).status_code == 401


def test_expired_token_stops_working(client, db):
    raw, token = make_token(db, Scope.people_read)
    token.expires_at = utcnow() - timedelta(minutes=1)
    db.add(token)
    db.commit()
    assert client.get("/api/v1/people", headers=bearer(raw)).status_code == 401


def test_session_cookie_does_not_open_the_api(client, db):
    sign_in(client, make_user(db, role=Role.admin))
    assert client.get("/api/v1/people").status_code == 401


def test_the_tokens_page_warns_of_tokens_about_to_expire_or_unused(client, db):
    sign_in(client, make_user(db, role=Role.admin))
    _, expiring = make_token(db, Scope.people_read, name="Old sync")
    expiring.expires_at = utcnow() + timedelta(days=3)
    expiring.last_used_at = utcnow()
    _, idle = make_token(db, Scope.people_read, name="Forgotten")
    idle.last_used_at = utcnow() - timedelta(days=120)
    _, busy = make_token(db, Scope.people_read, name="Busy")
    busy.last_used_at = utcnow()
    db.add_all([expiring, idle, busy])
    db.commit()
    page = client.get("/admin/tokens").text

    def row(token):
        return page.split(f'id="token-{token.id}"')[1].split("</tr>")[0]

    assert "Expires soon" in row(expiring) and "Not used for 90 days" not in row(expiring)
    assert "Not used for 90 days" in row(idle) and "Expires soon" not in row(idle)
    assert "Expires soon" not in row(busy) and "Not used" not in row(busy)
    assert "600 a minute" in page
