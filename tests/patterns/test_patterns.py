"""The patterns page: people in several incidents and low-level concerns about one member of
staff, counted in SQL, for the DSL and deputies only, every look audited without names."""

import json
import re
from datetime import timedelta

from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.core.types import utcnow
from app.people.models import Person, PersonKind
from tests.factories import make_incident, make_person, make_user, sign_in

ALL_NO = {"harmed_child": False, "criminal_offence": False, "risk_to_children": False,
          "unsuitable": False}  # fmt: skip


def _person(db, kind=PersonKind.pupil, name="Ada", surname="Lovelace", **extra) -> Person:
    return make_person(db, kind, forename=name, surname=surname, **extra)


def _involving(db, *links, days_ago=3, **overrides):
    people = [{"person_id": person.id, "role": role} for person, role in links]
    return make_incident(
        db, people=people, occurred_at=utcnow() - timedelta(days=days_ago), **overrides
    )


def _low_level(db, staff, days_ago=3, **answers):
    return _involving(
        db,
        (staff, "subject"),
        days_ago=days_ago,
        offender_type="staff",
        category="staff_conduct",
        lado_harm_test={**ALL_NO, **answers},
    )


def _dsl(client, db, role=Role.dsl):
    user = make_user(db, role=role)
    sign_in(client, user)
    return user


def _section(html: str, heading_id: str) -> str:
    start = html.index(f'id="{heading_id}"')
    end = html.find("</section>", start)
    return html[start:end]


def test_a_person_in_several_incidents_is_shown_with_roles_dates_and_links(client, db):
    ada = _person(db, year_group="Year 9")
    ben = _person(db, name="Ben", surname="Jones")
    first = _involving(db, (ada, "victim"), days_ago=40)
    second = _involving(db, (ada, "subject"), (ben, "witness"), days_ago=10)
    third = _involving(db, (ada, "victim"), (ada, "witness"), days_ago=2)
    _dsl(client, db)
    page = client.get("/patterns")
    assert page.status_code == 200
    people = _section(page.text, "people-heading")
    assert "Ada Lovelace" in people and "Ben Jones" not in people  # Ben is in one only
    row = people[people.index("Ada Lovelace") :]
    assert "<strong>3</strong>" in row  # three incidents, though Ada is linked four times
    assert "victim, subject, witness" in row
    for incident in (first, second, third):
        assert f'href="/incidents/{incident.id}">{incident.reference}</a>' in row
    assert row.index(first.reference) < row.index(third.reference)  # in the order they happened
    assert "Year 9" in row


def test_minimum_count_and_period_filter_the_lists(client, db):
    ada = _person(db)
    _involving(db, (ada, "victim"), days_ago=400)
    _involving(db, (ada, "victim"), days_ago=20)
    _involving(db, (ada, "victim"), days_ago=5)
    _dsl(client, db)
    assert "Ada Lovelace" in _section(client.get("/patterns?min_count=3").text, "people-heading")
    assert "Ada Lovelace" not in _section(
        client.get("/patterns?min_count=4").text, "people-heading"
    )
    last_year = client.get("/patterns?period=12m&min_count=3").text
    assert "Ada Lovelace" not in _section(last_year, "people-heading")
    assert "Ada Lovelace" in _section(
        client.get("/patterns?period=12m&min_count=2").text, "people-heading"
    )
    for bad in ("1", "0", "-3", "many", "101"):
        refused = client.get(f"/patterns?min_count={bad}")
        assert refused.status_code == 422 and "from 2 to 100" in refused.text
    assert client.get("/patterns?period=forever").status_code == 422


def test_low_level_concerns_about_the_same_member_of_staff(client, db):
    teacher = _person(db, kind=PersonKind.staff, name="Carol", surname="Teach")
    other = _person(db, kind=PersonKind.staff, name="Dan", surname="Other")
    one = _low_level(db, teacher, days_ago=30)
    two = _low_level(db, teacher, days_ago=3)
    _low_level(db, teacher, harmed_child=True)  # over the harm threshold: an allegation
    _involving(db, (teacher, "subject"), offender_type="staff")  # harm test not answered
    _low_level(db, other)
    _dsl(client, db)
    staff = _section(client.get("/patterns").text, "staff-heading")
    assert "Carol Teach" in staff and "Dan Other" not in staff
    row = staff[staff.index("Carol Teach") :]
    assert "<strong>2</strong>" in row
    assert one.reference in row and two.reference in row
    assert "harm threshold" in staff
    # Carol is in four incidents altogether, which the first list shows.
    assert "<strong>4</strong>" in _section(client.get("/patterns").text, "people-heading")


def test_empty_lists_explain_what_would_show(client, db):
    _person(db)
    _dsl(client, db, role=Role.deputy_dsl)
    page = client.get("/patterns").text
    assert "Nobody on the roster is linked to 2 or more incidents" in page
    assert "described in words" in page
    assert "No member of staff has 2 or more low-level concerns" in page
    assert "four noes" in page


def test_viewing_patterns_is_audited_without_names(client, db):
    ada = _person(db)
    _involving(db, (ada, "victim"))
    _involving(db, (ada, "victim"))
    dsl = _dsl(client, db)
    client.get("/patterns?period=6m&min_count=2")
    (event,) = db.exec(select(AuditEvent).where(AuditEvent.action == "patterns.viewed")).all()
    assert event.actor_user_id == dsl.id
    assert event.detail == {"period": "6m", "min_count": 2, "people": 1, "low_level_staff": 0}
    assert "Ada" not in json.dumps(event.detail) and "Lovelace" not in json.dumps(event.detail)


def test_htmx_gets_the_results_and_a_browser_the_whole_page(client, db):
    ada = _person(db)
    _involving(db, (ada, "victim"))
    _involving(db, (ada, "witness"))
    _dsl(client, db)
    page = client.get("/patterns")
    assert "<html" in page.text and 'id="patterns-results"' in page.text
    assert page.headers["vary"] == "HX-Request"
    fragment = client.get("/patterns?min_count=2", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<nav" not in fragment.text
    assert fragment.text.lstrip().startswith('<div id="patterns-results">')
    assert "Ada Lovelace" in fragment.text


def test_only_the_dsl_and_deputies_see_patterns(client, db):
    for role in (Role.staff, Role.slt, Role.admin):
        client.cookies.clear()
        sign_in(client, make_user(db, role=role))
        assert client.get("/patterns").status_code == 403
    assert not db.exec(select(AuditEvent).where(AuditEvent.action == "patterns.viewed")).all()


def test_the_page_uses_a_fixed_number_of_queries(client, db, count_queries):
    _dsl(client, db)
    teacher = _person(db, kind=PersonKind.staff, name="Carol", surname="Teach")

    def add_people(n):
        for i in range(n):
            pupil = _person(db, name=f"P{n}{i}", surname="Pupil")
            _involving(db, (pupil, "victim"), (teacher, "witness"))
            _involving(db, (pupil, "subject"))
            _low_level(db, teacher)

    def measure():
        with count_queries() as counter:
            page = client.get("/patterns")
        assert page.status_code == 200
        return counter.count, len(re.findall(r'<th scope="row">', page.text))

    add_people(2)
    few, rows_few = measure()
    add_people(8)
    many, rows_many = measure()
    assert rows_many > rows_few
    assert many == few
