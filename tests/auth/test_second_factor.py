"""TOTP for DSLs, deputies and administrators: enrolment with a QR code, codes used once."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.audit.models import AuditEvent
from app.auth import service as auth_service
from app.auth.models import Role, UserSession
from app.core.keys import SealedValueError
from app.main import create_app
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD, make_user, page_csrf, sign_in, totp_code


def _password_step(client, user):
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": page_csrf(client)}
    )
    assert response.status_code == 303
    return response.headers["location"]


def test_dsl_without_a_factor_must_enrol_before_seeing_anything(client, db):
    user = make_user(db, role=Role.dsl, second_factor=False)
    assert _password_step(client, user) == "/account/second-factor"
    assert client.get("/").headers["location"] == "/account/second-factor"
    page = client.get("/account/second-factor")
    assert page.status_code == 200
    assert 'src="data:image/svg+xml' in page.text
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text).group(1)
    # Reloading the page keeps the same secret, so a scanned QR code stays valid.
    assert secret in client.get("/account/second-factor").text
    code = pyotp.TOTP(secret).now()
    response = client.post(
        "/account/second-factor",
        data={"code": code, "csrf_token": page_csrf(client, "/account/second-factor")},
    )
    assert response.status_code == 303
    assert client.get("/").status_code == 200
    db.refresh(user)
    assert user.has_second_factor
    actions = [e.action for e in db.exec(select(AuditEvent)).all()]
    assert "auth.second_factor_enrolled" in actions


def test_wrong_enrolment_code_is_refused(client, db):
    user = make_user(db, role=Role.admin, second_factor=False)
    _password_step(client, user)
    client.get("/account/second-factor")
    response = client.post(
        "/account/second-factor",
        data={"code": "000000", "csrf_token": page_csrf(client, "/account/second-factor")},
    )
    assert response.status_code == 422
    assert "That code is not right" in response.text
    db.refresh(user)
    assert not user.has_second_factor


def test_enrolled_dsl_gives_a_code_after_the_password(client, db):
    user = make_user(db, role=Role.deputy_dsl)
    assert _password_step(client, user) == "/login/second-factor"
    assert client.get("/").headers["location"] == "/login/second-factor"
    response = client.post(
        "/login/second-factor",
        data={"code": totp_code(user), "csrf_token": page_csrf(client, "/login/second-factor")},
    )
    assert response.headers["location"] == "/"
    assert client.get("/").status_code == 200


def test_a_code_cannot_be_used_twice(client, anon, db):
    user = make_user(db, role=Role.dsl)
    code = totp_code(user)
    _password_step(client, user)
    client.post(
        "/login/second-factor",
        data={"code": code, "csrf_token": page_csrf(client, "/login/second-factor")},
    )
    _password_step(anon, user)
    response = anon.post(
        "/login/second-factor",
        data={"code": code, "csrf_token": page_csrf(anon, "/login/second-factor")},
    )
    assert response.status_code == 422
    assert "used already" in response.text
    assert anon.get("/").headers["location"] == "/login/second-factor"


def test_staff_need_no_second_factor(client, db):
    user = make_user(db, role=Role.staff)
    assert _password_step(client, user) == "/"


def test_too_many_wrong_codes_end_the_session_and_lock_the_account(client, anon, db, settings):
    user = make_user(db, role=Role.dsl)
    _password_step(client, user)
    for _ in range(settings.login_max_failures):
        response = client.post(
            "/login/second-factor",
            data={"code": "123456", "csrf_token": page_csrf(client, "/login/second-factor")},
        )
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.get("/").headers["location"] == "/login"
    refused = anon.post(  # a browser that never signed in to the account
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": page_csrf(anon)}
    )
    assert refused.status_code == 429


def test_admin_resets_a_lost_factor(client, anon, db):
    admin = make_user(db, role=Role.admin)
    dsl = make_user(db, role=Role.dsl)
    sign_in(client, admin)
    response = client.post(
        f"/admin/users/{dsl.id}/second-factor/reset",
        data={"csrf_token": page_csrf(client, "/admin/users")},
    )
    assert response.status_code == 303
    db.refresh(dsl)
    assert not dsl.has_second_factor
    assert _password_step(anon, dsl) == "/account/second-factor"


def test_one_code_sent_from_eight_sessions_at_once_lets_exactly_one_in(committed_engine, settings):
    """The code's step is claimed by one conditional UPDATE, so parallel requests cannot all
    read "unused" before any of them writes."""
    settings = settings.model_copy(
        update={"database_url": committed_engine.url.render_as_string(hide_password=False)}
    )
    with Session(committed_engine, expire_on_commit=False) as session:
        user = make_user(session, role=Role.dsl)
    app = create_app(settings=settings, engine=committed_engine)
    browsers = [
        TestClient(app, base_url="https://testserver", follow_redirects=False) for _ in range(8)
    ]
    tokens = []
    for browser in browsers:
        browser.__enter__()
        _password_step(browser, user)
        tokens.append(page_csrf(browser, "/login/second-factor"))
    code, start = totp_code(user), threading.Barrier(len(browsers))

    def send(n: int) -> bool:
        start.wait()
        response = browsers[n].post(
            "/login/second-factor", data={"code": code, "csrf_token": tokens[n]}
        )
        return response.status_code == 303 and response.headers["location"] == "/"

    try:
        with ThreadPoolExecutor(len(browsers)) as pool:
            accepted = list(pool.map(send, range(len(browsers))))
    finally:
        for browser in browsers:
            browser.__exit__(None, None, None)
    assert accepted.count(True) == 1
    with Session(committed_engine) as session:
        passed = session.exec(
            select(UserSession).where(
                UserSession.user_id == user.id, UserSession.second_factor_at.is_not(None)
            )
        ).all()
    assert len(passed) == 1


def test_seeds_are_sealed_at_rest_and_shown_only_while_enrolling(client, db):
    user = make_user(db, role=Role.dsl, second_factor=False)
    _password_step(client, user)
    page = client.get("/account/second-factor")
    seed = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text).group(1)
    db.refresh(user)
    assert user.totp_secret.startswith("gAAAAA") and seed not in user.totp_secret
    assert auth_service.totp_seed(user=user, secret_key=TEST_SECRET) == seed
    with pytest.raises(SealedValueError):
        auth_service.totp_seed(user=user, secret_key="another-secret-key-of-enough-length-42")


def test_reseal_moves_every_seed_to_a_new_key(db):
    user = make_user(db, role=Role.dsl)
    seed = auth_service.totp_seed(user=user, secret_key=TEST_SECRET)
    new_key = "a-new-secret-key-that-is-long-enough-987654"
    assert (
        auth_service.reseal_totp_seeds(
            session=db, old_secret_key=TEST_SECRET, new_secret_key=new_key
        )
        >= 1
    )
    assert auth_service.totp_seed(user=user, secret_key=new_key) == seed
    with pytest.raises(SealedValueError):
        auth_service.reseal_totp_seeds(session=db, old_secret_key=TEST_SECRET, new_secret_key="x")
