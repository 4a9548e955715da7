"""SLT creates a policy from the template and publishes it; staff acknowledge; SLT sees it."""

import re

import pytest
from playwright.sync_api import expect

from app.auth.models import Role
from tests.browser.conftest import browser_sign_in
from tests.factories import make_user

pytestmark = pytest.mark.browser


def test_create_publish_acknowledge(live_haven, page, browser):
    with live_haven.session() as session:
        head = make_user(session, role=Role.slt)
        staff = make_user(session, role=Role.staff)
    browser_sign_in(page, live_haven.url, head)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Policies").click()
    page.get_by_role("link", name="New policy from a template").click()
    page.get_by_label(re.compile("Social media")).check()
    page.get_by_role("button", name="Create the draft").click()
    expect(page.get_by_text("The policy was created as a draft.")).to_be_visible()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Version approved.")).to_be_visible()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published. Staff are asked to read")).to_be_visible()
    policy_url = page.url.split("?")[0]

    context = browser.new_context()
    reader = context.new_page()
    browser_sign_in(reader, live_haven.url, staff)
    reader.get_by_role("link", name=re.compile("social media", re.I)).first.click()
    reader.get_by_role("button", name=re.compile("I have read and understood")).click()
    expect(reader.get_by_text("your acknowledgement of this version is recorded")).to_be_visible()
    context.close()

    page.goto(policy_url)
    row = page.get_by_role("row", name=re.compile(staff.display_name))
    expect(row).not_to_contain_text("not yet")
    expect(page.get_by_text(re.compile(r"^1 of \d+ staff have acknowledged"))).to_be_visible()
