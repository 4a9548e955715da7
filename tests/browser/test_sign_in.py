"""Signing in, failing to, and signing out, in a real browser with and without htmx."""

import re

import pytest
from playwright.sync_api import expect

from app.auth.models import Role
from tests.factories import PASSWORD, make_user, totp_code

pytestmark = pytest.mark.browser


def _user(live_haven, role=Role.staff):
    with live_haven.session() as session:
        return make_user(session, role=role)


def test_sign_in_and_sign_out(live_haven, page):
    user = _user(live_haven)
    page.goto(live_haven.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {user.display_name}")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto(live_haven.url + "/account")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_failed_sign_in_shows_the_reason_in_place(live_haven, page):
    user = _user(live_haven)
    page.goto(live_haven.url + "/login")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("The email address or password is not right.")
    expect(alert).to_be_focused()
    expect(page.get_by_label("Email address")).to_have_value(user.email)
    expect(page).to_have_url(re.compile(r"/login$"))


def test_sign_in_works_without_javascript(live_haven, browser):
    user = _user(live_haven)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(live_haven.url + "/login")
    page.get_by_label("Email address").fill("wrong@school.example")
    page.get_by_label("Password").fill("whatever")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The email address or password is not right.")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {user.display_name}")).to_be_visible()
    context.close()


def test_dsl_gives_a_second_factor(live_haven, page):
    user = _user(live_haven, Role.dsl)
    page.goto(live_haven.url + "/login")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_label("Code").fill(totp_code(user))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Safeguarding", exact=True)).to_be_visible()
