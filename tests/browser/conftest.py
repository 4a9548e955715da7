"""Browser tests: Debian's Chromium, driven by Playwright, against Haven served by uvicorn."""

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlmodel import Session

from app.core.config import Settings
from app.core.db import make_engine
from app.core.migrations import upgrade_to_head
from app.main import create_app
from tests.browser.seed import Seeded, seed_school
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD, totp_code
from tests.processes import free_port

CHROMIUM = "/usr/bin/chromium"
# Flags for a machine with no outside network: no background calls home, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


EXPECTED_REFUSAL = re.compile(r"status of (403|409|422|429) ")

# htmx copies the old element's classes onto the new one until it settles, then puts the new
# ones back, so colours change through a CSS transition after the new text is already shown.
SETTLED = """() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')
  && document.getAnimations()
       .every(a => !(a instanceof CSSTransition) || a.playState !== 'running')"""


def wait_until_settled(page: Page) -> None:
    """Wait until no htmx request or swap is under way and no transition is running."""
    page.wait_for_function(SETTLED)


def sign_in_by_keyboard(page: Page, url: str, user) -> None:
    """Email and password typed on the sign-in page, as a keyboard user does."""
    page.goto(url + "/login")
    # The email field has focus on arrival: wait for it, or the first keys are lost.
    expect(page.locator("#email")).to_be_focused()
    page.keyboard.type(user.email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def browser_sign_in(page: Page, url: str, user, look: Callable[[str], None] | None = None) -> None:
    """Email and password filled in on the sign-in page, then the code when the role needs one.
    `look`, when given, is called with "login" and "second-factor" as each page is shown."""
    page.goto(url + "/login")
    if look:
        look("login")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if user.role.needs_second_factor:
        expect(page.get_by_label("Code")).to_be_visible()
        if look:
            look("second-factor")
        page.get_by_label("Code").fill(totp_code(user))
        page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name=f"Hello, {user.display_name}")).to_be_visible()


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("HAVEN_REQUIRE_BROWSER"):
        raise pytest.UsageError(f"{CHROMIUM} is missing: apt-get install chromium")
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@dataclass
class LiveHaven:
    url: str
    engine: object

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


def haven_settings(database_url: str, evidence_dir) -> Settings:
    return Settings(
        dev=False,  # Secure cookies: Chromium accepts them from http://localhost
        secret_key=TEST_SECRET,
        database_url=database_url,
        evidence_dir=evidence_dir,
        school_name="Browser Test School",
        worker="off",
    )


@contextmanager
def serve_haven(settings: Settings, engine) -> Iterator[LiveHaven]:
    """Haven served by uvicorn on a free port of 127.0.0.1, in a thread of this process."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("Haven did not start")
        time.sleep(0.05)
    try:
        yield LiveHaven(url=f"http://localhost:{port}", engine=engine)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_haven(scratch_database, tmp_path) -> Iterator[LiveHaven]:
    """Haven on a real port with its own committed database, as it runs in production."""
    database_url = scratch_database()
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    with serve_haven(haven_settings(database_url, tmp_path / "evidence"), engine) as haven:
        yield haven
    engine.dispose()


@pytest.fixture(scope="module")
def school(tmp_path_factory) -> Iterator[tuple[str, Seeded, object]]:
    """A school with something on every page (tests/browser/seed.py), served once for a test
    module, on SQLite: the tests that use it look at pages, not at the database, and every
    other browser test runs on both databases."""
    folder = tmp_path_factory.mktemp("school")
    database_url = f"sqlite:///{folder / 'haven.db'}"
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    settings = haven_settings(database_url, folder / "evidence")
    seeded = seed_school(settings, engine)
    with serve_haven(settings, engine) as haven:
        yield haven.url, seeded, engine
    engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []

    def on_console(message):
        # Chromium logs every 4xx answer; those to bad input are expected, a missing file is not.
        if message.type == "error" and not EXPECTED_REFUSAL.search(message.text):
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    screenshots = os.path.join(os.path.dirname(__file__), "screenshots")
    os.makedirs(screenshots, exist_ok=True)
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    page.screenshot(path=os.path.join(screenshots, f"{name}.png"), full_page=True)
    context.close()
    # A CSP violation or script error is a bug a person would meet.
    assert errors == [], errors
