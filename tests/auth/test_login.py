"""Signing in and out as a person does: forms, cookies, throttling and sessions."""

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import select, update

from app.audit.models import AuditEvent
from app.auth.dependencies import SESSION_COOKIE
from app.auth.models import Role, SignInThrottle, UserSession
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


def _try(client, email, password="guess"):  # noqa: S107 - a wrong guess
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": page_csrf(client)}
    )


def _message(response) -> str:
    match = re.search(r'<p class="alert alert-error"[^>]*>(.*?)</p>', response.text, re.S)
    assert match, response.text
    return " ".join(match.group(1).split())


def test_repeated_failures_refuse_even_the_right_password_from_a_new_browser(client, db, settings):
    user = make_user(db)
    for _ in range(settings.login_max_failures):
        assert _try(client, user.email).status_code == 422
    response = _try(client, user.email, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins. Wait 15 minutes" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert "auth.login_throttled" in _actions(db)


def test_an_unknown_email_answers_word_for_word_as_an_account_does(app, db, settings):
    """Status and message of every answer, through the lockout, are the same for an email
    with an account and for one without (OWASP ASVS 4.0.3 V2.2.1)."""
    user = make_user(db)
    sequences = []
    for email in (user.email, "nobody@school.example"):
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as browser:
            answers = [_try(browser, email) for _ in range(settings.login_max_failures + 2)]
            sequences.append([(a.status_code, _message(a)) for a in answers])
    assert sequences[0] == sequences[1]
    assert [status for status, _ in sequences[0]] == [422] * 5 + [429] * 2


def test_the_owners_browser_still_signs_in_while_others_are_refused(app, client, db, settings):
    """An attacker's failures slow the account for browsers it has never signed in with; the
    owner's own browser, known by its device cookie, is counted on its own."""
    user = make_user(db)
    sign_in(client, user)  # the owner's browser: it now carries a device cookie
    client.post("/logout", data={"csrf_token": page_csrf(client, "/logout")})
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as attacker:
        for _ in range(settings.login_max_failures + 3):
            _try(attacker, user.email)
        assert _try(attacker, user.email, PASSWORD).status_code == 429
    response = _try(client, user.email, PASSWORD)
    assert response.status_code == 303
    home = client.get("/")
    assert "9 failed attempts to sign in to your account" in home.text  # refused ones too


def test_the_owner_is_told_of_failed_attempts_once_at_their_next_sign_in(app, client, db):
    user = make_user(db)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as other:
        for _ in range(3):
            _try(other, user.email)
    sign_in(client, user)
    assert "3 failed attempts to sign in to your account" in client.get("/").text
    client.post("/logout", data={"csrf_token": page_csrf(client, "/logout")})
    sign_in(client, user)
    assert "failed attempts to sign in" not in client.get("/").text


def test_many_failures_from_one_address_refuse_it_whatever_the_email(client, db, settings):
    user = make_user(db)
    for n in range(settings.login_address_max_failures):
        assert _try(client, f"someone{n}@school.example").status_code == 422
    response = _try(client, user.email, PASSWORD)  # a fresh email, but the same address
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.text


def test_a_refusal_ends_after_the_lockout_period(client, db, settings):
    user = make_user(db)
    for _ in range(settings.login_max_failures):
        _try(client, user.email)
    db.exec(update(SignInThrottle).values(blocked_until=utcnow() - timedelta(seconds=1)))
    db.commit()
    sign_in(client, user)
    assert client.get("/").status_code == 200


def test_failures_are_kept_without_the_email_or_address_typed(client, db):
    _try(client, "pupil.name@school.example")
    keys = " ".join(row.key for row in db.exec(select(SignInThrottle)).all())
    assert len(db.exec(select(SignInThrottle)).all()) == 2  # the email and the address
    assert "pupil" not in keys and "testclient" not in keys


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
