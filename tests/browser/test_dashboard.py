"""The dashboard in Chromium: charts drawn and visible, presets swapped in by htmx with the address
following, the governors' report, and no CSP violation on the way (the `page` fixture fails
the test on any console error)."""

import pytest
from playwright.sync_api import expect

from app.auth.models import Role
from tests.browser.conftest import browser_sign_in
from tests.dashboard.data import seed
from tests.factories import make_user

pytestmark = pytest.mark.browser


def test_the_dashboard_draws_its_charts_within_the_csp(live_haven, page):
    with live_haven.session() as session:
        seeded = seed(session)
        leader = make_user(session, role=Role.slt)
    browser_sign_in(page, live_haven.url, leader)
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()

    page.get_by_label("From").fill(seeded.start.isoformat())
    page.get_by_label("to", exact=True).fill(seeded.end.isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(f"{live_haven.url}/dashboard?{seeded.query}&split=platform")
    weekly = page.get_by_role("img", name="Incidents each week by platform")
    expect(weekly).to_be_visible()
    box = weekly.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100
    # The bars are painted with the stylesheet's pattern fills, not left black or unpainted.
    fill = page.evaluate("getComputedStyle(document.querySelector('#chart-weekly-p0 rect')).fill")
    assert fill == "rgb(31, 78, 156)"
    assert page.locator("svg.chart").count() == 5
    expect(page.get_by_role("table", name="Incidents each week by platform")).to_be_visible()
    expect(page.get_by_text("4 incidents in 4 weeks").first).to_be_visible()

    # Splitting the weeks another way redraws the chart in place.
    page.get_by_label("incidents by", exact=True).select_option("category")
    expect(page.get_by_role("img", name="Incidents each week by kind")).to_be_visible()
    assert "split=category" in page.url

    # A preset is swapped in by htmx and the address follows, so the page can be bookmarked.
    page.get_by_role("link", name="Last 12 weeks").click()
    expect(page.get_by_role("link", name="Last 12 weeks")).to_have_attribute("aria-current", "true")
    assert "/dashboard?from=" in page.url
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_have_count(1)

    page.goto(f"{live_haven.url}/dashboard/governors-report?{seeded.query}")
    expect(page.get_by_role("heading", name="Online safety and phones: report to governors"))
    expect(page.get_by_text("4 incidents were reported")).to_be_visible()
    page.emulate_media(media="print")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
