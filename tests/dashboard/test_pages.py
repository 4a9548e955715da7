"""The dashboard as the DSL and senior leaders use it: the page and its htmx fragment, the CSV of
each chart against known data, the governors' report, bad periods, and no names anywhere."""

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlmodel import select

from app.auth.models import Role, User
from app.dashboard.pages import CSV_CHARTS
from tests.dashboard.data import SECRET_WORDS, seed
from tests.factories import make_incident, make_user, sign_in


@pytest.fixture
def seeded(db):
    return seed(db)


def _rows(response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def _signed_in(client, db, role: Role):
    user = make_user(db, role=role)
    sign_in(client, user)
    return user


def test_the_dashboard_shows_the_period_with_charts_and_tables(client, db, seeded):
    _signed_in(client, db, Role.dsl)
    response = client.get(f"/dashboard?{seeded.query}")
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"]
    page = response.text
    assert "<html" in page and 'id="dashboard"' in page
    for heading in (
        "Incidents each week by platform",
        "Open incidents by severity",
        "Time to respond",
        "Escalations by rule",
        "Checklist completion",
        "Policy acknowledgements",
        "Policies due for review",
    ):
        assert heading in page
    assert page.count('role="img"') == 5  # weekly, open, rules, checklists, policies
    assert "4 incidents in 4 weeks" in page
    assert "4 hours" in page and "2 days" in page  # the medians
    # Inline SVG the CSP accepts: no style element or attribute, no inline script.
    assert "<style" not in page and "style=" not in page
    assert re.findall(r"<script(?![^>]*\bsrc=\"/static/)", page) == []
    # Every chart's data can be downloaded for the same period.
    for chart in CSV_CHARTS:
        assert f"/dashboard/{chart}.csv?{seeded.query}".replace("&", "&amp;") in page


def test_the_weeks_split_by_kind_or_by_who_was_responsible(client, db, seeded):
    _signed_in(client, db, Role.dsl)
    by_kind = client.get(f"/dashboard?{seeded.query}&split=category").text
    assert "Incidents each week by kind" in by_kind
    assert "By kind, the most: Harassment (2)" in by_kind
    by_who = client.get(f"/dashboard?{seeded.query}&split=offender_type").text
    assert "Incidents each week by who was responsible" in by_who
    assert '<option value="offender_type" selected>' in by_who
    response = client.get(f"/dashboard?{seeded.query}&split=names")
    assert response.status_code == 422
    assert "Choose how to split the incidents" in response.text


def test_an_htmx_request_gets_the_dashboard_block_only(client, db, seeded):
    _signed_in(client, db, Role.deputy_dsl)
    response = client.get(f"/dashboard?{seeded.query}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"]
    assert "<html" not in response.text
    assert response.text.lstrip().startswith('<div id="dashboard">')
    assert "Incidents each week by platform" in response.text


def test_without_dates_it_shows_this_term(client, db):
    _signed_in(client, db, Role.slt)
    page = client.get("/dashboard").text
    assert 'aria-current="true">This term</a>' in page
    assert page.count('aria-current="true"') == 1  # not "this school year" too
    assert "Terms are approximated as autumn (September to December)" in page


def test_senior_leaders_see_counts_and_never_a_name(client, db, seeded):
    viewer = _signed_in(client, db, Role.slt)
    others = [u.display_name for u in db.exec(select(User)).all() if u.id != viewer.id]
    for path in (f"/dashboard?{seeded.query}", f"/dashboard/governors-report?{seeded.query}"):
        page = client.get(path).text
        assert "4 incidents" in page
        for words in (*SECRET_WORDS, *others, *(i.reference for i in seeded.incidents)):
            assert words not in page, (path, words)
    for chart in CSV_CHARTS:
        text = client.get(f"/dashboard/{chart}.csv?{seeded.query}").text
        for words in (*SECRET_WORDS, *others):
            assert words not in text, (chart, words)


def test_weekly_csv_counts_each_week_and_a_quiet_week_as_zero(client, db, seeded):
    _signed_in(client, db, Role.dsl)
    rows = _rows(client.get(f"/dashboard/incidents-by-platform.csv?{seeded.query}"))
    start = seeded.start
    assert [r["week beginning"] for r in rows] == [
        (start + timedelta(weeks=n)).isoformat() for n in range(4)
    ]
    assert [r["incidents"] for r in rows] == ["2", "1", "0", "1"]
    assert [(r["tiktok"], r["snapchat"], r["instagram"]) for r in rows] == [
        ("1", "1", "0"),
        ("1", "0", "0"),
        ("0", "0", "0"),
        ("0", "0", "1"),
    ]
    assert {r["whatsapp"] for r in rows} == {"0"}  # reported after the period
    by_offender = _rows(client.get(f"/dashboard/incidents-by-offender.csv?{seeded.query}"))
    assert [(r["pupil"], r["unknown"]) for r in by_offender] == [
        ("1", "0"),
        ("0", "1"),
        ("0", "0"),
        ("0", "0"),
    ]
    by_category = _rows(client.get(f"/dashboard/incidents-by-category.csv?{seeded.query}"))
    assert sum(int(r["harassment"]) for r in by_category) == 2


def test_the_other_csv_files_match_the_data(client, db, seeded):
    _signed_in(client, db, Role.dsl)
    get = lambda chart: _rows(client.get(f"/dashboard/{chart}.csv?{seeded.query}"))  # noqa: E731
    assert {r["severity"]: r["open incidents"] for r in get("open-by-severity")} == {
        "low": "4",
        "medium": "1",
        "high": "0",
        "critical": "0",
    }
    assert get("response-times") == [
        {"measure": "first_action", "incidents": "3", "median hours": "4.0"},
        {"measure": "closed", "incidents": "1", "median hours": "48.0"},
    ]
    rules = {r["rule"]: r for r in get("escalations-by-rule")}
    assert rules["pupil-involved"]["escalations"] == "1"
    assert rules["pupil-involved"]["previous period"] == "0"
    assert {r["escalations"] for k, r in rules.items() if k != "pupil-involved"} == {"0"}
    (conduct,) = get("checklist-completion")
    assert (conduct["given"], conduct["finished"], conduct["percent finished"]) == ("2", "1", "50")
    accounts = len(db.exec(select(User).where(User.is_active.is_(True))).all())
    (policy,) = get("policy-acknowledgements")
    assert (policy["policy"], policy["acknowledged"], policy["accounts"]) == (
        "Social media",
        "1",
        str(accounts),
    )
    (review,) = get("policy-reviews")
    assert (review["policy"], review["version"]) == ("Social media", "1")


def test_a_period_without_incidents_says_so_and_exports_headers_only(client, db, seeded):
    _signed_in(client, db, Role.dsl)
    quiet = "from=2020-01-06&to=2020-02-02"
    page = client.get(f"/dashboard?{quiet}").text
    assert "No incidents in this period." in page
    assert "No escalations in this period." in page
    assert "No checklists were given out in this period." in page
    for chart in ("incidents-by-platform", "escalations-by-rule", "checklist-completion"):
        response = client.get(f"/dashboard/{chart}.csv?{quiet}")
        assert response.status_code == 200
        lines = response.text.strip().splitlines()
        assert len(lines) == 1 and "," in lines[0], chart
    lines = client.get(f"/dashboard/response-times.csv?{quiet}").text.strip().splitlines()
    assert lines == ["measure,incidents,median hours"]


BAD_PERIODS = [
    ("from=2026-03-01&to=2026-02-01", "ends before it starts"),
    ("from=yesterday&to=2026-02-01", "must be a date like"),
    ("from=2026-02-30&to=2026-03-01", "must be a date like"),
    ("from=2020-01-01&to=2023-06-30", "longer than three years"),
    ("from=2999-01-01&to=2999-02-01", "has not started yet"),
    ("from=2026-01-01", "Give both dates"),
]


@pytest.mark.parametrize(("query", "message"), BAD_PERIODS)
def test_a_bad_period_gets_a_clear_message_on_the_page_and_for_csv(client, db, query, message):
    _signed_in(client, db, Role.dsl)
    response = client.get(f"/dashboard?{query}")
    assert response.status_code == 422
    assert message in response.text
    assert 'aria-invalid="true"' in response.text  # the chooser stays, marked
    fragment = client.get(f"/dashboard?{query}", headers={"HX-Request": "true"})
    assert fragment.status_code == 422 and message in fragment.text
    assert "<html" not in fragment.text
    for path in ("/dashboard/incidents-by-platform.csv", "/dashboard/governors-report"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 422, path
        assert message in response.text


def test_an_unknown_chart_is_not_found(client, db):
    _signed_in(client, db, Role.dsl)
    assert client.get("/dashboard/names.csv").status_code == 404


def test_the_governors_report_in_plain_words(client, db, seeded):
    _signed_in(client, db, Role.slt)
    response = client.get(f"/dashboard/governors-report?{seeded.query}")
    assert response.status_code == 200
    page = response.text
    assert "4 incidents were reported, up by 3 (300%) from 1 in the previous period." in page
    assert "met the school's escalation criteria 1 time, up from none" in page
    assert "within 4 hours of the report" in page
    assert "closed within 2 days of being reported" in page
    assert "Of 2 checklists given out in this period, 1 is finished (50%)." in page
    assert "Social media (version 1): review due by" in page
    assert '<link rel="stylesheet" href="/static/css/dashboard.css">' in page


def test_the_number_of_queries_does_not_grow_with_the_incidents(client, db, seeded, count_queries):
    _signed_in(client, db, Role.dsl)

    def queries() -> int:
        with count_queries() as counter:
            assert client.get(f"/dashboard?{seeded.query}").status_code == 200
        return counter.count

    before = queries()
    for _ in range(5):
        make_incident(db, seeded.reporter, offender_type="pupil")
    assert queries() == before
    assert before <= 20


def test_the_nav_links_to_the_dashboard_for_leaders_only(client, db):
    for role, shown in ((Role.slt, True), (Role.staff, False)):
        with client:
            client.cookies.clear()
            _signed_in(client, db, role)
            assert ('href="/dashboard"' in client.get("/").text) is shown, role
