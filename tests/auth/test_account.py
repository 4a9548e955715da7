"""A person's own account page: changing the password signs out every other browser."""

from app.core.security import verify_password
from tests.factories import PASSWORD, make_user, page_csrf, sign_in

NEW_PASSWORD = "a-brand-new-long-password"


def _change(client, current, new, confirm=None, htmx=False):
    return client.post(
        "/account/password",
        data={
            "current_password": current,
            "new_password": new,
            "confirm_password": confirm if confirm is not None else new,
            "csrf_token": page_csrf(client, "/account"),
        },
        headers={"HX-Request": "true"} if htmx else {},
    )


def test_password_change_keeps_this_browser_and_signs_out_the_others(client, anon, db):
    user = make_user(db)
    sign_in(client, user)
    sign_in(anon, user)
    response = _change(client, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/account?notice=password-changed"
    assert (
        "Other browsers have been signed out" in client.get("/account?notice=password-changed").text
    )
    assert anon.get("/").headers["location"] == "/login"
    db.refresh(user)
    assert verify_password(user.password_hash, NEW_PASSWORD)


def test_wrong_current_password_changes_nothing(client, db):
    user = make_user(db)
    sign_in(client, user)
    before = user.password_hash
    response = _change(client, "not-my-password", NEW_PASSWORD, htmx=True)
    assert response.status_code == 422
    assert "current password is not right" in response.text
    assert response.text.lstrip().startswith('<form id="password-form"')
    db.refresh(user)
    assert user.password_hash == before


def test_short_or_mismatched_new_passwords_are_refused(client, db):
    user = make_user(db)
    sign_in(client, user)
    assert "at least 12 characters" in _change(client, PASSWORD, "short").text
    assert "do not match" in _change(client, PASSWORD, NEW_PASSWORD, "something-else-x").text
    db.refresh(user)
    assert verify_password(user.password_hash, PASSWORD)
