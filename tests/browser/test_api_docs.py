"""The API documentation renders from Haven's own files under its strict CSP."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_api_docs_render_without_a_cdn(live_haven, page):
    outside = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith(live_haven.url) else None
        ),
    )
    page.goto(live_haven.url + "/api/docs")
    expect(page.get_by_text("Bulk upsert the roster by external_id")).to_be_visible()
    expect(page.get_by_role("heading", name="Haven", exact=False).first).to_be_visible()
    assert [url for url in outside if not url.startswith("data:")] == []
