"""Every unsafe form and htmx request needs a CSRF token bound to the browser's cookie."""

from sqlmodel import select

from app.auth.models import Role, User, UserSession
from app.core.csrf import CSRF_COOKIE
from tests.factories import PASSWORD, make_user, page_csrf, sign_in


def test_login_without_a_token_is_refused_and_starts_no_session(client, db):
    user = make_user(db)
    client.get("/login")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert db.exec(select(UserSession)).all() == []


def test_token_from_another_browser_is_refused(client, anon, db):
    user = make_user(db)
    other_token = page_csrf(anon)
    client.get("/login")
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": other_token}
    )
    assert response.status_code == 403


def test_token_without_its_cookie_is_refused(client, db):
    user = make_user(db)
    token = page_csrf(client)
    client.cookies.delete(CSRF_COOKIE)
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 403


def test_htmx_requests_carry_the_token_in_a_header(client, db):
    user = make_user(db)
    token = page_csrf(client)
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert response.status_code == 204


def test_htmx_request_with_a_bad_header_is_refused_into_the_flash_region(client, db):
    admin = make_user(db, role=Role.admin)
    sign_in(client, admin)
    response = client.post(
        "/admin/users",
        data={
            "email": "new@school.example",
            "display_name": "New",
            "role": "staff",
            "password": "long-enough-password",
        },
        headers={"HX-Request": "true", "X-CSRF-Token": "forged"},
    )
    assert response.status_code == 403
    assert response.headers["HX-Retarget"] == "#flash"
    assert "<html" not in response.text
    assert db.exec(select(User).where(User.email == "new@school.example")).first() is None


def test_page_embeds_the_token_for_htmx_in_the_body_headers(client):
    page = client.get("/login").text
    assert 'hx-headers=\'{"X-CSRF-Token": "' in page


def test_sign_in_rotates_the_csrf_cookie(client, db):
    user = make_user(db)
    client.get("/login")
    before = client.cookies.get(CSRF_COOKIE)
    sign_in(client, user)
    assert client.cookies.get(CSRF_COOKIE) not in (None, before)
