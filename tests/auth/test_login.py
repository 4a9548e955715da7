"""Signing in and out as a person does: forms, cookies, throttling and sessions."""

from datetime import timedelta

from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.dependencies import SESSION_COOKIE
from app.auth.models import Role, UserSession
from app.core.types import utcnow
from tests.factories import PASSWORD, make_user, page_csrf, sign_in


def _actions(db):
    return [e.action for e in db.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()]


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


def test_staff_member_signs_in_and_sees_their_home_page(client, db):
    user = make_user(db, role=Role.staff)
    response = client.post(
        "/login",
        data={"email": user.email.upper(), "password": PASSWORD, "csrf_token": page_csrf(client)},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "HttpOnly" in cookie and "Secure" in cookie
    assert "samesite=lax" in cookie.lower()
    home = client.get("/")
    assert home.status_code == 200
    assert user.display_name in home.text
    assert "auth.login" in _actions(db)


def test_wrong_password_is_refused_with_a_clear_message_and_no_session(client, db):
    user = make_user(db)
    response = client.post(
        "/login",
        data={"email": user.email, "password": "wrong-password", "csrf_token": page_csrf(client)},
    )
    assert response.status_code == 422
    assert "The email address or password is not right." in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert db.exec(select(UserSession)).all() == []
    assert _actions(db)[-1] == "auth.login_failed"


def test_unknown_email_gets_the_same_message_as_a_wrong_password(client, db):
    response = client.post(
        "/login",
        data={"email": "nobody@school.example", "password": "x", "csrf_token": page_csrf(client)},
    )
    assert response.status_code == 422
    assert "The email address or password is not right." in response.text


def test_htmx_login_failure_returns_only_the_form(client, db):
    user = make_user(db)
    response = client.post(
        "/login",
        data={"email": user.email, "password": "nope", "csrf_token": page_csrf(client)},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<form id="login-form"')
    assert "<html" not in response.text
    assert response.headers["vary"] == "HX-Request"


def test_htmx_login_success_redirects_through_hx_redirect(client, db):
    user = make_user(db)
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": page_csrf(client)},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/"


def test_repeated_failures_lock_the_account_even_for_the_right_password(client, db, settings):
    user = make_user(db)
    for _ in range(settings.login_max_failures):
        client.post(
            "/login",
            data={"email": user.email, "password": "guess", "csrf_token": page_csrf(client)},
        )
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": page_csrf(client)}
    )
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.text
    db.refresh(user)
    assert user.locked_until is not None and user.locked_until > utcnow()
    assert "auth.login_locked" in _actions(db)


def test_lock_expires(client, db, settings):
    user = make_user(db)
    user.locked_until = utcnow() - timedelta(seconds=1)
    db.add(user)
    db.commit()
    sign_in(client, user)
    assert client.get("/").status_code == 200


def test_inactive_accounts_cannot_sign_in(client, db):
    user = make_user(db, is_active=False)
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": page_csrf(client)}
    )
    assert response.status_code == 422


def test_next_parameter_only_redirects_within_haven(client, db):
    user = make_user(db)
    for target, expected in [
        ("/account", "/account"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
    ]:
        client.cookies.clear()
        response = client.post(
            "/login",
            data={
                "email": user.email,
                "password": PASSWORD,
                "next": target,
                "csrf_token": page_csrf(client),
            },
        )
        assert response.headers["location"] == expected


def test_logout_revokes_the_session_on_the_server(client, anon, db):
    user = make_user(db)
    sign_in(client, user)
    stolen = client.cookies.get(SESSION_COOKIE)
    response = client.post("/logout", data={"csrf_token": page_csrf(client, "/account")})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?notice=signed-out"
    # The old cookie value no longer works anywhere.
    anon.cookies.set(SESSION_COOKIE, stolen)
    assert anon.get("/").headers["location"] == "/login"
    assert "auth.logout" in _actions(db)


def test_logout_page_works_without_javascript(client, db):
    sign_in(client, make_user(db))
    page = client.get("/logout")
    assert page.status_code == 200
    assert 'action="/logout"' in page.text


def test_idle_session_expires(client, db, settings):
    user = make_user(db)
    sign_in(client, user)
    browser = db.exec(select(UserSession).where(UserSession.user_id == user.id)).one()
    browser.last_seen_at = utcnow() - timedelta(minutes=settings.session_idle_minutes + 1)
    db.add(browser)
    db.commit()
    assert client.get("/").headers["location"] == "/login"


def test_session_past_its_lifetime_expires(client, db):
    user = make_user(db)
    sign_in(client, user)
    browser = db.exec(select(UserSession).where(UserSession.user_id == user.id)).one()
    browser.expires_at = utcnow() - timedelta(seconds=1)
    db.add(browser)
    db.commit()
    assert client.get("/").headers["location"] == "/login"


def test_forged_session_cookie_is_ignored(anon):
    anon.cookies.set(SESSION_COOKIE, "made-up-value")
    assert anon.get("/").headers["location"] == "/login"


def test_over_long_email_is_refused_and_nothing_is_written(client, db):
    before = len(_actions(db))
    response = client.post(
        "/login",
        data={"email": "a" * 300 + "@x.example", "password": "x", "csrf_token": page_csrf(client)},
    )
    assert response.status_code == 422
    assert "email" in response.text and "at most 254 characters" in response.text
    assert len(_actions(db)) == before


def test_signed_in_visitor_to_login_page_goes_home(client, db):
    sign_in(client, make_user(db))
    assert client.get("/login").headers["location"] == "/"
