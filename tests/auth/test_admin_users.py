"""An administrator manages accounts on the users page, with and without JavaScript."""

from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import Role, User
from tests.factories import PASSWORD, make_user, page_csrf, sign_in


def _admin_client(client, db):
    admin = make_user(db, role=Role.admin)
    sign_in(client, admin)
    return admin


def _new_user(client, htmx=False, **overrides):
    data = {
        "email": "new.teacher@school.example",
        "display_name": "New Teacher",
        "role": "staff",
        "password": "first-password-123",
        "csrf_token": page_csrf(client, "/admin/users"),
        **overrides,
    }
    return client.post("/admin/users", data=data, headers={"HX-Request": "true"} if htmx else {})


def test_admin_adds_a_user_who_can_then_sign_in(client, anon, db):
    _admin_client(client, db)
    response = _new_user(client)
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert "The account was created." in page.text and "New Teacher" in page.text
    user = db.exec(select(User).where(User.email == "new.teacher@school.example")).one()
    assert user.password_hash.startswith("$argon2id$")
    assert "first-password-123" not in user.password_hash
    sign_in(anon, user, "first-password-123")
    event = db.exec(select(AuditEvent).where(AuditEvent.action == "user.created")).all()[-1]
    assert event.entity_id == str(user.id)
    assert "New Teacher" not in str(event.detail)


def test_htmx_create_answers_with_hx_redirect(client, db):
    _admin_client(client, db)
    response = _new_user(client, htmx=True)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/admin/users?notice=user-created"


def test_bad_new_user_input_is_explained_and_nothing_is_written(client, db):
    _admin_client(client, db)
    count = len(db.exec(select(User)).all())
    cases = [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "at least 12 characters"),
        ({"role": "headmaster"}, "role"),
        ({"display_name": ""}, "display_name"),
    ]
    for overrides, message in cases:
        response = _new_user(client, htmx=True, **overrides)
        assert response.status_code == 422, overrides
        assert message in response.text
        assert "<html" not in response.text
    assert len(db.exec(select(User)).all()) == count


def test_duplicate_email_is_a_conflict(client, db):
    _admin_client(client, db)
    existing = make_user(db)
    response = _new_user(client, email=existing.email.upper())
    assert response.status_code == 409
    assert "already exists" in response.text


def test_over_long_name_is_refused(client, db):
    _admin_client(client, db)
    response = _new_user(client, display_name="x" * 121)
    assert response.status_code == 422
    assert "at most 120 characters" in response.text


def test_deactivating_a_user_signs_them_out(client, anon, db):
    _admin_client(client, db)
    staff = make_user(db)
    sign_in(anon, staff)
    response = client.post(
        f"/admin/users/{staff.id}",
        data={"role": "staff", "csrf_token": page_csrf(client, "/admin/users")},
    )
    assert response.status_code == 303
    db.refresh(staff)
    assert not staff.is_active
    assert anon.get("/").headers["location"] == "/login"


def test_changing_a_role_needs_a_fresh_sign_in(client, anon, db):
    _admin_client(client, db)
    staff = make_user(db, second_factor=True)
    sign_in(anon, staff)
    client.post(
        f"/admin/users/{staff.id}",
        data={"role": "dsl", "is_active": "true", "csrf_token": page_csrf(client, "/admin/users")},
    )
    db.refresh(staff)
    assert staff.role == Role.dsl
    assert anon.get("/").headers["location"] == "/login"


def test_admin_cannot_lock_themselves_out(client, db):
    admin = _admin_client(client, db)
    response = client.post(
        f"/admin/users/{admin.id}",
        data={
            "role": "staff",
            "is_active": "true",
            "csrf_token": page_csrf(client, "/admin/users"),
        },
    )
    assert response.status_code == 422
    db.refresh(admin)
    assert admin.role == Role.admin


def test_unknown_user_is_not_found(client, db):
    _admin_client(client, db)
    response = client.post(
        "/admin/users/999999",
        data={"role": "staff", "csrf_token": page_csrf(client, "/admin/users")},
    )
    assert response.status_code == 404


def test_staff_cannot_reach_the_users_page(client, db):
    sign_in(client, make_user(db))
    response = client.get("/admin/users")
    assert response.status_code == 403
    assert "Your role does not give access" in response.text


def test_password_is_never_echoed_back(client, db):
    _admin_client(client, db)
    response = _new_user(client, email="bad", password="a-secret-password-1")
    assert "a-secret-password-1" not in response.text
    assert PASSWORD not in response.text


def test_admin_resets_a_forgotten_password_and_unlocks_the_account(client, anon, db, settings):
    _admin_client(client, db)
    staff = make_user(db)
    for _ in range(settings.login_max_failures):  # from a browser that never signed in
        anon.post(
            "/login",
            data={"email": staff.email, "password": "guess", "csrf_token": page_csrf(anon)},
        )
    refused = anon.post(
        "/login", data={"email": staff.email, "password": PASSWORD, "csrf_token": page_csrf(anon)}
    )
    assert refused.status_code == 429
    token = page_csrf(client, "/admin/users")
    short = client.post(
        f"/admin/users/{staff.id}/password", data={"password": "short", "csrf_token": token}
    )
    assert short.status_code == 422
    response = client.post(
        f"/admin/users/{staff.id}/password",
        data={"password": "temporary-password-9", "csrf_token": token},
    )
    assert response.status_code == 303
    sign_in(anon, staff, "temporary-password-9")  # no longer refused for the failures
    actions = [e.action for e in db.exec(select(AuditEvent)).all()]
    assert "user.password_reset" in actions
