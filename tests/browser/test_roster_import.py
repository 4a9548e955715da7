"""An administrator imports the roster from a CSV file: a refused file, then preview and apply."""

import re

import pytest
from playwright.sync_api import expect

from app.auth.models import Role
from tests.browser.conftest import browser_sign_in
from tests.factories import make_user

pytestmark = pytest.mark.browser

ROSTER = (
    "\ufeffID,Type,Legal Forename,Legal Surname,Preferred Forename,Reg Group,NC Year,Work Email,"
    "SEN Status\r\n"
    "P1,Pupil,Olivia,Ashworth,Liv,8B,Year 8,,K\r\n"
    'P2,Pupil,"Noah",Brennan,,9C,Year 9,,\r\n'
    "S1,Staff,Grace,Okafor,,,,grace.okafor@school.example,\r\n"
)


def test_upload_preview_apply_then_see_the_roster(live_haven, page, tmp_path):
    with live_haven.session() as session:
        admin = make_user(session, role=Role.admin)
        make_user(session, email="grace.okafor@school.example")
    bad = tmp_path / "bad.csv"
    bad.write_text(ROSTER.replace("Noah", ""), encoding="utf-8")
    good = tmp_path / "roster.csv"
    good.write_text(ROSTER, encoding="utf-8")

    browser_sign_in(page, live_haven.url, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Roster").click()
    expect(page.get_by_role("heading", name="The roster is empty")).to_be_visible()
    page.get_by_role("link", name="import the roster").click()

    page.get_by_label("CSV file").set_input_files(str(bad))
    page.get_by_role("button", name="Check the file").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("bad.csv was not imported")
    expect(alert.get_by_role("link", name=re.compile("Line 3, Legal Forename"))).to_be_visible()
    expect(page.get_by_role("table", name=re.compile("Problems in the file"))).to_contain_text(
        "is empty; it is required"
    )

    page.get_by_label("CSV file").set_input_files(str(good))
    page.get_by_role("button", name="Check the file").click()
    expect(
        page.get_by_role("heading", name="Check the changes before applying them")
    ).to_be_visible()
    expect(page.get_by_text("New: 3")).to_be_visible()
    expect(page.get_by_text(re.compile("Ignored columns.*SEN Status"))).to_be_visible()
    added = page.get_by_role("table", name="People who will be added")
    expect(added).to_contain_text("Liv Ashworth")
    expect(added).to_contain_text("Grace Okafor")

    page.get_by_role("button", name="Apply these changes").click()
    expect(page.get_by_role("heading", name="The roster was updated")).to_be_visible()
    expect(page.get_by_text("Added: 3")).to_be_visible()
    expect(page.get_by_text("Staff accounts linked: 1")).to_be_visible()

    page.get_by_role("link", name="See the roster").click()
    people = page.get_by_role("table", name=re.compile(r"^People( matching|$)"))
    expect(people.get_by_role("row", name=re.compile("Liv Ashworth"))).to_contain_text("8B")
    expect(people.get_by_role("row", name=re.compile("Grace Okafor"))).to_contain_text(
        "grace.okafor@school.example"
    )
    expect(page.get_by_text(re.compile("Last updated .* by a CSV import"))).to_be_visible()

    page.get_by_label("Name, MIS id or registration group").fill("9c")
    expect(people.get_by_role("row")).to_have_count(2)  # the header and Noah Brennan
    expect(people).to_contain_text("Noah Brennan")
    expect(page).to_have_url(re.compile(r"q=9c"))
