"""A member of staff reports a concern with a screenshot; the DSL works it and exports it."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from app.auth.models import Role
from app.core.types import utcnow
from tests.browser.conftest import browser_sign_in
from tests.factories import make_user, png

pytestmark = pytest.mark.browser


def test_report_then_triage_then_export(live_haven, page, browser, tmp_path):
    with live_haven.session() as session:
        staff = make_user(session, role=Role.staff)
        dsl = make_user(session, role=Role.dsl)
    screenshot = tmp_path / "tiktok.png"
    screenshot.write_bytes(png((120, 80), (10, 120, 200)))
    when = (utcnow() - timedelta(hours=5)).astimezone(ZoneInfo("Europe/London"))

    browser_sign_in(page, live_haven.url, staff)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Report a concern").click()
    page.get_by_label("In a sentence, what happened?").fill("TikTok video mocking Mrs Example")
    page.get_by_label("What did you see, and where?").fill("Posted by a Year 9 account last night.")
    page.get_by_label("When did it happen").fill(when.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Where?", exact=True).select_option("tiktok")
    page.get_by_label("What kind of concern?").select_option("malicious_post")
    page.get_by_label("Who seems responsible?").select_option("pupil")
    page.get_by_label("Who is targeted?").select_option("staff")
    page.get_by_label("Abusive", exact=True).check()
    page.locator("#screenshots").set_input_files(str(screenshot))
    page.get_by_role("button", name="Send to the DSL").click()
    expect(page.get_by_text("Thank you. Your report is with the DSL")).to_be_visible()
    reference = page.locator("strong", has_text="INC-").first.inner_text()
    expect(page.get_by_role("cell", name="Not yet")).to_be_visible()

    context = browser.new_context()
    lead = context.new_page()
    browser_sign_in(lead, live_haven.url, dsl)
    lead.get_by_role("link", name="Open the incident queue").click()
    lead.get_by_label("Platform").select_option("tiktok")
    expect(lead).to_have_url(re.compile(r"platform=tiktok"))
    lead.get_by_role("link", name=reference).click()
    expect(lead.get_by_role("heading", name=re.compile(reference))).to_be_visible()
    expect(lead.get_by_text("Escalated by")).to_be_visible()
    expect(lead.get_by_text("image/png")).to_be_visible()

    for _ in range(2):  # the first two playbook steps
        lead.get_by_role("button", name="Mark step done").first.click()
        expect(lead.get_by_text("Saved, and added to the chronology.")).to_be_visible()
    expect(
        lead.get_by_text(re.compile(r"^2 of 13 steps done"))
    ).to_be_visible()  # 11 + 2 from rules

    lead.get_by_label("A decision, with its reasons").check()
    lead.get_by_label("What happened or was decided").fill("Not referring to the police.")
    lead.get_by_role("textbox", name="Reasons").fill(
        "No threats or hate content; POSH is handling removal."
    )
    lead.get_by_role("button", name="Add to the chronology").click()
    chronology = lead.locator(".chronology")
    expect(chronology).to_contain_text("Not referring to the police.")
    expect(chronology).to_contain_text("POSH is handling removal.")

    with lead.expect_download() as download:
        lead.get_by_role("link", name="CSV").click()
    csv_text = download.value.path().read_text()
    assert "decision" in csv_text and "Not referring to the police." in csv_text
    lead.goto(live_haven.url + lead.url.split(live_haven.url)[1].split("?")[0] + "/chronology")
    expect(lead.get_by_role("heading", name=f"{reference}: chronology")).to_be_visible()
    lead.goto(live_haven.url + "/incidents")
    lead.get_by_role("link", name=reference).click()
    lead.screenshot(path="tests/browser/screenshots/incident-page.png", full_page=True)
    context.close()

    page.reload()
    expect(page.get_by_role("cell", name=re.compile("^Yes,"))).to_be_visible()
