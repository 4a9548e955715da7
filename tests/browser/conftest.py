"""Browser tests: Debian's Chromium, driven by Playwright, against Haven served by uvicorn."""

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from sqlmodel import Session

from app.core.config import Settings
from app.core.db import make_engine
from app.core.migrations import upgrade_to_head
from app.main import create_app
from tests.conftest import TEST_SECRET

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


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("HAVEN_REQUIRE_BROWSER"):
        raise pytest.UsageError(f"{CHROMIUM} is missing: apt-get install chromium")
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveHaven:
    url: str
    engine: object

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


@pytest.fixture
def live_haven(scratch_database, tmp_path) -> Iterator[LiveHaven]:
    """Haven on a real port with its own committed database, as it runs in production."""
    database_url = scratch_database()
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    settings = Settings(
        dev=False,  # Secure cookies: Chromium accepts them from http://localhost
        secret_key=TEST_SECRET,
        database_url=database_url,
        evidence_dir=tmp_path / "evidence",
        school_name="Browser Test School",
        worker="off",
    )
    port = _free_port()
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
    yield LiveHaven(url=f"http://localhost:{port}", engine=engine)
    server.should_exit = True
    thread.join(timeout=10)
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
