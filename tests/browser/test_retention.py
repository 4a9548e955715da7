"""The DSL reviews records past their retention period in a browser: holds one, deletes another
after confirming, and finds patterns across incidents."""

import pytest
from playwright.sync_api import expect

from app.auth.models import Role
from tests.browser.conftest import browser_sign_in
from tests.factories import make_person, make_user
from tests.retention.records import closed_incident

pytestmark = pytest.mark.browser


def test_review_hold_and_delete(live_haven, page):
    with live_haven.session() as session:
        dsl = make_user(session, role=Role.dsl)
        pupil = make_person(session, forename="Robin")
        kept = closed_incident(
            session, offender_type="pupil", people=[{"person_id": pupil.id, "role": "victim"}]
        )
        gone = closed_incident(
            session, offender_type="pupil", people=[{"person_id": pupil.id, "role": "subject"}]
        )
    browser_sign_in(page, live_haven.url, dsl)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Patterns").click()
    expect(page.get_by_role("rowheader", name="Robin Example")).to_be_visible()
    page.screenshot(path="/tmp/ret_shots/patterns.png", full_page=True)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Retention").click()
    row = page.locator(f"#incident-{kept.id}")
    row.get_by_text("Place a legal hold").click()
    row.get_by_label("Why (a claim").fill("Letter before claim.")
    row.get_by_role("button", name="Place the hold").click()
    expect(page.get_by_text("The legal hold is in place")).to_be_visible()
    expect(page.locator(f"#incident-{kept.id}").get_by_text("Held", exact=True)).to_be_visible()
    page.screenshot(path="/tmp/ret_shots/retention.png", full_page=True)

    page.locator(f"#incident-{gone.id}").get_by_role("link", name="Review for deletion").click()
    expect(page.get_by_role("heading", name=f"Delete {gone.reference}?")).to_be_visible()
    page.screenshot(path="/tmp/ret_shots/delete.png", full_page=True)
    page.get_by_label("Its retention period is over").check()
    page.get_by_label("I have reviewed this record").check()
    page.get_by_role("button", name="Delete for good").click()
    expect(page.get_by_text("were deleted")).to_be_visible()
    expect(page.locator(f"#incident-{gone.id}")).to_have_count(0)
    expect(page.locator(f"#incident-{kept.id}")).to_be_visible()
