"""Every page Haven shows, as each role sees it, checked with axe-core and at two widths.

The pages come from the app's routes: every GET route is visited by each role the route table
of tests/auth/test_route_access.py lets in, so a new page is checked as soon as it exists. Routes
with parameters get a real id from the seeded school (`Seeded.url_for`); a new one fails
`test_every_route_with_parameters_has_an_example` until it is given one there.

Each page is checked with axe-core (vendored, see vendor/README.md): a violation of impact
"serious" or "critical" fails the test, and milder ones are printed. At 375 px wide the page
body must not scroll sideways. Full-page screenshots at 375 by 812 and 1280 by 800 are saved under
tests/browser/screenshots/<role>/<page>-<width>.png (CI keeps them).
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.routing import iter_route_contexts
from playwright.sync_api import BrowserContext, Page, expect
from playwright.sync_api import Error as PlaywrightError

from app.auth.models import Role
from app.main import create_app
from tests.auth.access import ACCESS, EVERYONE, SIGNED_IN
from tests.browser.conftest import browser_sign_in, haven_settings, wait_until_settled
from tests.browser.seed import ROLES, Seeded
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.browser

HERE = Path(__file__).parent
AXE = HERE / "vendor" / "axe-core-4.14.1" / "axe.min.js"
SCREENSHOTS = HERE / "screenshots"
FAILING_IMPACTS = {"serious", "critical"}
# Every rule runs at 1280 px; at 375 px, those that depend on the layout.
NARROW_RULES = [
    "scrollable-region-focusable",
    "target-size",
    "meta-viewport",
    "nested-interactive",
]
NARROW = {"width": 375, "height": 812}
WIDE = {"width": 1280, "height": 800}
# Answers that are not pages for a person (files, JSON) are found by their content type; these
# pages are not Haven's own markup.
NOT_HAVENS = {"/api/docs"}  # Swagger UI, vendored as it is
DOWNLOAD = re.compile(r"\.(csv|json|pdf|txt)$")


# The school, served once for this module (the `school` fixture of conftest.py) ---------------


@pytest.fixture(scope="module")
def contexts(browser, school) -> Iterator:
    """One browser context per role for the whole module, signed in on first use (so each
    second factor code is used once). CSP is bypassed only so that axe's script tag can be
    added; the other browser tests keep it."""
    url, seeded, _ = school
    made: dict = {}

    def context(role, report: "Report | None" = None) -> BrowserContext:
        if role not in made:
            made[role] = browser.new_context(viewport=WIDE, bypass_csp=True)
            if isinstance(role, Role):
                page = made[role].new_page()

                def look(step: str) -> None:
                    report.check(page, role.value, step, screenshots=step != "login")

                browser_sign_in(page, url, seeded.users[role], look if report else None)
                page.close()
        return made[role]

    yield context
    for item in made.values():
        item.close()


class Report:
    """What went wrong, gathered over many pages and raised once at the end."""

    def __init__(self):
        self.failures: list[str] = []
        self.notes: list[str] = []

    def check(self, page: Page, role: str, name: str, *, screenshots: bool = True) -> None:
        """axe at 1280 px and at 375 px, the page's width at 375 px, and the screenshots."""
        where = f"{role}/{name} ({page.url})"
        folder = SCREENSHOTS / role
        folder.mkdir(parents=True, exist_ok=True)
        size = page.viewport_size
        found: dict[str, dict] = {}
        wait_until_settled(page)
        for viewport in (WIDE, NARROW):
            if viewport != page.viewport_size:
                page.set_viewport_size(viewport)
                page.evaluate(NEXT_FRAME)
            if viewport == NARROW:
                overflow = page.evaluate(OVERFLOW)
                if overflow:
                    self.failures.append(f"{where}: scrolls sideways at 375 px; {overflow}")
            for violation in axe(page, None if viewport == WIDE else NARROW_RULES):
                found.setdefault(violation["id"], violation)
            if screenshots:
                path = folder / f"{name}-{viewport['width']}.png"
                page.screenshot(path=path, full_page=True)
        page.set_viewport_size(size)
        for violation in found.values():
            text = "\n".join(
                [
                    f"{where}: [{violation['impact']}] {violation['id']}: {violation['help']}",
                    *(f"    {json.dumps(node['target'])}" for node in violation["nodes"][:8]),
                ]
            )
            (self.failures if violation["impact"] in FAILING_IMPACTS else self.notes).append(text)

    def raise_if_failed(self) -> None:
        if self.notes:
            print("\nMinor and moderate accessibility findings:\n" + "\n".join(self.notes))
        assert not self.failures, "\n" + "\n".join(self.failures)


NEXT_FRAME = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
# The widest things sticking out past the right edge, when the page scrolls sideways.
OVERFLOW = """() => {
  if (document.documentElement.scrollWidth <= window.innerWidth) return "";
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.right > window.innerWidth + 1 && el.closest(".table-scroll") === null) {
      const classes = typeof el.className === "string" ? el.className.trim() : "";
      wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
        (classes ? "." + classes.split(/\\s+/).join(".") : "") + ` (${Math.round(box.right)}px)`);
    }
  }
  return `${document.documentElement.scrollWidth}px: ` + wide.slice(0, 6).join(", ");
}"""


def axe(page: Page, rules: list[str] | None = None) -> list[dict]:
    """axe-core's violations on the page as it is now (all its rules, or only `rules`)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    options = {"resultTypes": ["violations"]}
    if rules:
        options["runOnly"] = {"type": "rule", "values": rules}
    return page.evaluate("async (o) => (await axe.run(document, o)).violations", options)


# The pages ------------------------------------------------------------------------------------


def _get_routes() -> list[str]:
    app = create_app(haven_settings("sqlite://", "/nonexistent"))
    paths = {
        route.path
        for route in iter_route_contexts(app.routes)
        if "GET" in (route.methods or ()) and route.path not in NOT_HAVENS
    }
    # Files (CSV and the like) are downloads, not pages.
    return sorted(
        p for p in paths if not p.startswith(("/api/v1/", "/static")) and not DOWNLOAD.search(p)
    )


def _reaches(role: Role | None, path: str) -> bool:
    rule = ACCESS[("GET", path)]
    if role is None:
        return rule == EVERYONE
    return rule in (EVERYONE, SIGNED_IN) or (isinstance(rule, frozenset) and role in rule)


def _name(path: str) -> str:
    """A file name for a page: /checklists/runs/{run_id} -> checklists-runs-run_id."""
    name = re.sub(r"[{}]", "", path).strip("/").replace("/", "-")
    return name or "home"


def pages_for(role: Role | None, seeded: Seeded) -> list[tuple[str, str]]:
    pages = []
    for path in _get_routes():
        if ("GET", path) not in ACCESS or not _reaches(role, path):
            continue  # an unknown route fails tests/auth/test_route_access.py
        url = seeded.url_for(path, role) if "{" in path else path
        if url:
            pages.append((_name(path), url))
    return pages + (seeded.more_pages(role) if role else [])


def test_every_route_with_parameters_has_an_example(school):
    _, seeded, _ = school
    missing = [
        path
        for path in _get_routes()
        if "{" in path and any(seeded.url_for(path, role) is None for role in ROLES)
    ]
    assert missing == [], f"give these routes a real address in Seeded.url_for: {missing}"


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_every_page_a_role_can_reach(school, contexts, role):
    url, seeded, _ = school
    report = Report()
    context = contexts(role, report)
    page = context.new_page()
    visited = 0
    for name, address in pages_for(role, seeded):
        try:
            answer = page.goto(url + address)
        except PlaywrightError as error:
            if "Download is starting" in str(error):
                continue  # a file, not a page
            raise
        assert answer.ok, (role, address, answer.status)
        if "text/html" not in answer.headers.get("content-type", ""):
            continue
        if urlsplit(page.url).path != urlsplit(url + address).path:
            continue  # this role is sent on to another page, which is checked on its own
        report.check(page, role.value, name)
        visited += 1
    assert visited >= 5
    page.close()
    report.raise_if_failed()


def test_pages_without_signing_in_and_error_pages(school, contexts):
    url, seeded, engine = school
    report = Report()
    page = contexts(None).new_page()
    for name, address in pages_for(None, seeded):
        answer = page.goto(url + address)
        if answer.ok and "text/html" in answer.headers.get("content-type", ""):
            report.check(page, "anonymous", name)
    page.goto(url + "/nothing-here")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    report.check(page, "anonymous", "error-404")
    page.goto(url + "/login")
    page.get_by_label("Email address").fill("nobody@school.example")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    report.check(page, "anonymous", "login-error")
    page.close()

    # Someone who must set up a second factor first.
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as db:
        newcomer = make_user(db, role=Role.deputy_dsl, second_factor=False)
    page = contexts("newcomer").new_page()
    page.goto(url + "/login")
    page.get_by_label("Email address").fill(newcomer.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Set up a second factor")).to_be_visible()
    report.check(page, "anonymous", "second-factor-setup")
    page.get_by_label("Code from the app").fill("000000")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_be_visible()
    report.check(page, "anonymous", "second-factor-setup-error")
    page.close()
    report.raise_if_failed()


def test_error_pages_signed_in(school, contexts):
    url, seeded, _ = school
    report = Report()
    page = contexts(Role.staff).new_page()
    page.goto(url + "/admin/users")
    expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
    report.check(page, "staff", "error-403")
    page.goto(url + f"/incidents/{seeded.incident_id + 999}")
    report.check(page, "staff", "error-404")
    page.close()
    report.raise_if_failed()


def test_pages_after_htmx_swaps(school, contexts):
    url, seeded, _ = school
    report = Report()

    lead = contexts(Role.dsl).new_page()
    lead.goto(url + "/incidents")
    lead.get_by_label("Platform").select_option("tiktok")
    expect(lead).to_have_url(re.compile(r"platform=tiktok"))
    report.check(lead, "dsl", "incidents-filtered")
    lead.get_by_label("Reference or title").fill("no such thing")
    expect(lead.get_by_text("No incidents match")).to_be_visible()
    report.check(lead, "dsl", "incidents-filtered-empty")
    lead.close()

    head = contexts(Role.slt).new_page()
    head.goto(url + "/checklists/oversight")
    head.get_by_label("Status").select_option("open")
    expect(head).to_have_url(re.compile(r"status=open"))
    report.check(head, "slt", "oversight-filtered")
    head.goto(url + "/policies/new")
    head.get_by_label("Title").fill("x" * 10)
    head.get_by_label("Takes effect on").fill("2030-01-02")
    head.get_by_label("Review by").fill("2029-01-02")
    head.get_by_role("button", name="Create the draft").click()
    expect(head.get_by_role("alert")).to_be_visible()
    report.check(head, "slt", "policy-new-error")
    head.close()

    staff = contexts(Role.staff).new_page()
    staff.goto(url + f"/checklists/runs/{seeded.runs[Role.staff]}")
    staff.get_by_role("button", name="Mark as done").first.click()
    expect(staff.locator("#run-progress")).to_contain_text("2 of")
    report.check(staff, "staff", "checklist-ticked")
    staff.goto(url + "/account")
    staff.locator("#current_password").fill("not my password at all")
    staff.locator("#new_password").fill("a-new-password-123")
    staff.locator("#confirm_password").fill("a-new-password-123")
    staff.get_by_role("button", name="Change password").click()
    expect(staff.get_by_role("alert")).to_be_visible()
    report.check(staff, "staff", "account-password-error")
    staff.close()

    admin = contexts(Role.admin).new_page()
    admin.goto(url + "/admin/people")
    admin.get_by_label("Type").select_option("pupil")
    expect(admin).to_have_url(re.compile(r"kind=pupil"))
    report.check(admin, "admin", "roster-filtered")
    admin.goto(url + "/admin/tokens")
    admin.get_by_label("Name").fill("Bromcom")
    admin.get_by_role("button", name="Make token").click()
    expect(admin.get_by_role("alert")).to_be_visible()
    report.check(admin, "admin", "tokens-error")
    admin.close()
    report.raise_if_failed()
