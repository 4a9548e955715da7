"""The main journeys with the keyboard alone (Tab, Shift+Tab, Enter, Space, arrows, typing),
with a visible focus indicator on every control reached, and where focus goes after htmx swaps.

The CSP stays on here (unlike the axe sweep), and a script error or CSP report fails a test.
"""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from app.auth.models import Role
from tests.browser.conftest import EXPECTED_REFUSAL, sign_in_by_keyboard, wait_until_settled
from tests.factories import totp_code

pytestmark = pytest.mark.browser

# What a sighted keyboard user sees of the focused element: its outline or a focus shadow.
FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "nothing has focus";
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  const shadow = style.boxShadow && style.boxShadow !== "none";
  const box = el.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) return "the focused element is not shown";
  return outline || shadow ? "" :
    `no focus indicator (${style.outlineStyle} ${style.outlineWidth}, ${style.boxShadow}) on ` +
    el.outerHTML.slice(0, 120);
}"""

DESCRIBE = """() => {
  const el = document.activeElement;
  const label = el.labels && el.labels.length ? el.labels[0].textContent : "";
  return [el.tagName, el.id, (el.getAttribute("aria-label") || label || el.textContent || "")
    .replace(/\\s+/g, " ").trim()];
}"""


@pytest.fixture(scope="module")
def signed_in(browser, school) -> Iterator:
    """A page per role, signed in once for the module by keyboard; script errors are kept."""
    url, seeded, _ = school
    pages: dict[Role, tuple[Page, list[str]]] = {}

    def page_for(role: Role) -> Page:
        if role not in pages:
            context = browser.new_context(
                viewport={"width": 1280, "height": 800}, locale="en-GB", timezone_id="Europe/London"
            )
            page = context.new_page()
            errors: list[str] = []
            page.on(
                "console",
                lambda m: (
                    errors.append(m.text)
                    if m.type == "error" and not EXPECTED_REFUSAL.search(m.text)
                    else None
                ),
            )
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            user = seeded.users[role]
            sign_in_by_keyboard(page, url, user)
            if role.needs_second_factor:
                expect(page.get_by_label("Code")).to_be_focused()
                page.keyboard.type(totp_code(user))
                page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name=f"Hello, {user.display_name}")).to_be_visible()
            pages[role] = (page, errors)
        return pages[role][0]

    yield page_for
    problems = {role.value: errors for role, (_, errors) in pages.items() if errors}
    for page, _ in pages.values():
        page.context.close()
    assert problems == {}, problems


def focused(page: Page) -> tuple[str, str, str]:
    return tuple(page.evaluate(DESCRIBE))


def assert_focus_visible(page: Page) -> None:
    assert page.evaluate(FOCUS_RING) == "", focused(page)


def tab_to(page: Page, name: str | re.Pattern, *, back: bool = False, limit: int = 120):
    """Press Tab (or Shift+Tab) until the focused control's name matches; each control on
    the way must show where focus is."""
    before = focused(page)
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        tag, element_id, label = focused(page)
        if (tag, element_id, label) == before:
            continue  # the next part of the same control (the fields of a date and time)
        before = (tag, element_id, label)
        if tag != "BODY":
            assert_focus_visible(page)
        if (name.search(label) if isinstance(name, re.Pattern) else label == name) or (
            element_id and element_id == name
        ):
            return
    raise AssertionError(f"{name!r} was not reached by keyboard; focus is on {focused(page)}")


def test_the_skip_link_takes_focus_to_the_content(school, signed_in):
    url, _, _ = school
    page = signed_in(Role.staff)
    page.goto(url + "/checklists")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    assert_focus_visible(page)
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")  # the next stop is inside the content, not the navigation
    assert page.evaluate("document.getElementById('main').contains(document.activeElement)")


def test_staff_report_a_concern(school, signed_in):
    url, _, _ = school
    page = signed_in(Role.staff)
    page.goto(url + "/")
    tab_to(page, "Report a concern")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Report a concern", level=1)).to_be_visible()
    tab_to(page, "title")
    page.keyboard.type("Snapchat story about a pupil")
    page.keyboard.press("Tab")
    page.keyboard.type("A story shared in a Year 8 group chat.")
    page.keyboard.press("Tab")  # when: a date and time, typed field by field (dd/mm/yyyy hh:mm am)
    for key in "010120260930a":
        page.keyboard.press(key)
    expect(page.locator("#occurred_at")).to_have_value("2026-01-01T09:30")
    for field, option in (
        ("platform", "Snapchat"),
        ("category", "Harassment"),
        ("offender_type", "A pupil"),
        ("target_type", "A pupil"),
    ):
        tab_to(page, field)
        page.keyboard.type(option)  # a closed select chooses by typing, as people do
        expect(page.locator(f"#{field}")).not_to_have_value("")
    tab_to(page, re.compile("^Abusive$"))
    page.keyboard.press("Space")
    expect(page.get_by_label("Abusive", exact=True)).to_be_checked()
    tab_to(page, "Send to the DSL")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Thank you. Your report is with the DSL")).to_be_visible()
    expect(page.get_by_role("cell", name="Snapchat story about a pupil")).to_be_visible()


def test_staff_tick_a_checklist_item_and_acknowledge_a_policy(school, signed_in):
    url, seeded, _ = school
    page = signed_in(Role.staff)
    page.goto(url + f"/checklists/runs/{seeded.runs[Role.staff]}")
    progress = page.locator("#run-progress")
    before = progress.inner_text()
    tab_to(page, "Mark as done")
    page.keyboard.press("Space")
    expect(progress).not_to_have_text(before)
    # The same item's button keeps focus after the swap, and shows it.
    expect(page.locator(":focus")).to_have_text("Mark as not done")
    assert_focus_visible(page)
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Mark as not done")

    page.goto(url + f"/policies/{seeded.policy_id}")
    tab_to(page, re.compile("I have read and understood version 1"))
    page.keyboard.press("Enter")
    message = page.get_by_role("status").filter(has_text=re.compile("acknowledg", re.I))
    expect(message).to_be_visible()
    # The form went with the swap: focus goes to the message about it, not to <body>.
    expect(message).to_be_focused()
    assert_focus_visible(page)


def test_dsl_filters_the_queue_and_records_a_decision(school, signed_in):
    url, _, _ = school
    page = signed_in(Role.dsl)
    page.goto(url + "/incidents")
    tab_to(page, "filter-platform")
    page.keyboard.type("TikTok")
    expect(page).to_have_url(re.compile(r"platform=tiktok"))
    expect(page.locator("#queue-results")).not_to_contain_text("Fake account")
    # After the results are swapped, focus stays on the filter being changed.
    assert focused(page)[1] == "filter-platform"
    assert_focus_visible(page)
    tab_to(page, "filter-q")
    page.keyboard.type("mocking")
    expect(page).to_have_url(re.compile(r"q=mocking"))
    assert focused(page)[1] == "filter-q"
    tab_to(page, re.compile(r"^INC-"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("TikTok video mocking")

    tab_to(page, "A note")
    page.keyboard.press("ArrowDown")  # radio buttons move with the arrows
    expect(page.get_by_label("A decision, with its reasons")).to_be_checked()
    page.keyboard.press("Tab")
    page.keyboard.type("Parents of both pupils to be told today.")
    page.keyboard.press("Tab")
    page.keyboard.type("The video has been removed; no threat; both families support it.")
    tab_to(page, "Add to the chronology")
    page.keyboard.press("Enter")
    chronology = page.locator(".chronology")
    expect(chronology).to_contain_text("Parents of both pupils to be told today.")
    expect(chronology).to_contain_text("both families support it")
    wait_until_settled(page)  # focus moves when htmx has settled the swap
    assert focused(page)[0] != "BODY"


def test_admin_makes_a_token(school, signed_in):
    url, _, _ = school
    page = signed_in(Role.admin)
    page.goto(url + "/admin/tokens")
    tab_to(page, "token-name")
    page.keyboard.type("Bromcom")
    tab_to(page, "Make token")
    page.keyboard.press("Enter")
    # No scope ticked: the error is read out first, and has focus.
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_be_focused()
    tab_to(page, "people:read")
    page.keyboard.press("Space")
    tab_to(page, "Make token")
    page.keyboard.press("Enter")
    created = page.get_by_role("status").filter(has_text="created")
    expect(created).to_be_visible()
    expect(created).to_be_focused()
    expect(page.locator("#new-token")).to_contain_text("hvn_")
    assert_focus_visible(page)


def test_focus_after_a_swap_that_removes_the_focused_control(school, signed_in):
    """Giving a checklist swaps the form, button and all: focus moves to the message about it
    (haven.js), never to <body>."""
    url, _, _ = school
    page = signed_in(Role.dsl)
    page.goto(url + "/checklists/assign")
    tab_to(page, "assign-template")
    page.keyboard.type("TikTok")
    tab_to(page, re.compile("^Staff$"))
    page.keyboard.press("Space")
    tab_to(page, "Give checklist")
    page.keyboard.press("Enter")
    message = page.get_by_role("status").filter(has_text="Given to")
    expect(message).to_be_visible()
    expect(message).to_be_focused()
    assert_focus_visible(page)


def test_focus_goes_to_the_error_even_without_autofocus(school, signed_in):
    """haven.js moves focus to a swapped-in error by itself: here the answer's [autofocus]
    is taken out on its way to the browser."""
    url, _, _ = school
    page = signed_in(Role.slt)

    def without_autofocus(route):
        answer = route.fetch()
        route.fulfill(response=answer, body=answer.text().replace(" autofocus", ""))

    page.route(url + "/account/password", without_autofocus)
    page.goto(url + "/account")
    tab_to(page, "current_password")
    page.keyboard.type("not my password")
    page.keyboard.press("Tab")
    page.keyboard.type("a-new-password-123")
    page.keyboard.press("Tab")
    page.keyboard.type("a-new-password-123")
    page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_be_focused()
    assert_focus_visible(page)
    page.unroute(url + "/account/password")


def test_the_busy_state_while_a_request_runs(school, signed_in):
    """While an htmx request runs its indicator shows and the region it replaces is busy."""
    url, _, _ = school
    page = signed_in(Role.dsl)
    page.goto(url + "/incidents")
    release = []

    def slowly(route):
        release.append(route)

    page.route(re.compile(r".*/incidents\?.*platform=youtube.*"), slowly)
    page.get_by_label("Platform").select_option("youtube")
    expect(page.locator("#queue-busy")).to_be_visible()
    expect(page.locator("#queue-results")).to_have_attribute("aria-busy", "true")
    page.wait_for_timeout(50)
    assert release, "the filter request was not made"
    release[0].continue_()
    expect(page.locator("#queue-busy")).to_be_hidden()
    expect(page.locator("#queue-results")).not_to_have_attribute("aria-busy", "true")
    page.unroute(re.compile(r".*/incidents\?.*platform=youtube.*"))
