"""A member of staff works through the conduct checklist by keyboard; the DSL sees it done."""

import re

import pytest
from playwright.sync_api import Page, expect

from app.auth.models import Role
from app.checklists import service
from tests.browser.conftest import browser_sign_in, sign_in_by_keyboard
from tests.factories import give_checklist, make_user

pytestmark = pytest.mark.browser


def _focused(page: Page) -> str:
    return page.evaluate("document.activeElement ? document.activeElement.textContent.trim() : ''")


def test_staff_completes_the_conduct_checklist_by_keyboard_and_the_dsl_sees_it(
    live_haven, page, browser
):
    with live_haven.session() as session:
        staff = make_user(session, role=Role.staff)
        dsl = make_user(session, role=Role.dsl)
        run = give_checklist(session, staff)
        session.commit()
        items = service.run_view(session=session, run=run).items

    sign_in_by_keyboard(page, live_haven.url, staff)
    expect(page.get_by_role("heading", name=f"Hello, {staff.display_name}")).to_be_visible()
    page.goto(f"{live_haven.url}/checklists/runs/{run.id}")
    progress = page.locator("#run-progress")
    expect(progress).to_contain_text(f"0 of {len(items)} done")

    ticked = 0
    for _ in range(200):  # Tab through the page, pressing every "Mark as done" on the way
        page.keyboard.press("Tab")
        label = _focused(page)
        if label.endswith("?") or "(optional)" in label:
            continue
        if page.evaluate("document.activeElement.tagName") == "TEXTAREA":
            page.keyboard.type("Checked my apps")
            continue
        if label == "Mark as done":
            page.keyboard.press("Enter")
            ticked += 1
            expect(progress).to_contain_text(f"{ticked} of {len(items)} done")
            # Focus stays on the same item's button after the swap.
            expect(page.locator(":focus")).to_have_text("Mark as not done")
        if label == "Finish checklist":
            page.keyboard.press("Enter")
            break
    assert ticked == len(items)
    expect(page.get_by_text("Well done: this checklist is finished.")).to_be_visible()
    expect(page.get_by_text("This checklist is finished and read-only.")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Mark as"))).to_have_count(0)

    context = browser.new_context()
    leader = context.new_page()
    browser_sign_in(leader, live_haven.url, dsl)
    leader.goto(live_haven.url + "/checklists/oversight")
    row = leader.get_by_role("row", name=re.compile("My conduct on social media"))
    expect(row.first).to_contain_text("100%")
    leader.get_by_label("Status").select_option("completed")
    expect(leader.locator("#oversight-results")).to_contain_text(staff.display_name)
    expect(leader).to_have_url(re.compile(r"status=completed"))
    context.close()
