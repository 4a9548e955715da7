"""An administrator imports the roster from a CSV file: upload, preview, apply or discard."""

import re
from datetime import timedelta

import pytest
from sqlmodel import func, select

from app.audit.models import AuditEvent
from app.auth.models import Role, School
from app.core.types import utcnow
from app.people.models import Person, RosterImport, RosterImportStatus
from tests.factories import make_user, page_csrf, sign_in

HEADER = "ID,Type,Legal Forename,Legal Surname,Preferred Forename,Reg Group,Year,Email,Notes\n"
ROSTER = HEADER + (
    "P1,pupil,Olivia,Ashworth,Liv,8B,Year 8,,likes art\n"
    "P2,pupil,Noah,Brennan,,9C,Year 9,,\n"
    "S1,staff,Grace,Okafor,,,,grace.okafor@school.example,\n"
)


@pytest.fixture
def admin(client, db):
    user = make_user(db, role=Role.admin)
    sign_in(client, user)
    return user


def _upload(client, text: str | bytes, *, whole=False, htmx=False, filename="roster.csv"):
    data = {"csrf_token": page_csrf(client, "/admin/people/import")}
    if whole:
        data["deactivate_missing"] = "true"
    content = text.encode() if isinstance(text, str) else text
    return client.post(
        "/admin/people/import",
        data=data,
        files={"file": (filename, content, "text/csv")},
        headers={"HX-Request": "true"} if htmx else {},
    )


def _import_id(response) -> int:
    match = re.search(r'action="/admin/people/import/(\d+)/apply"', response.text)
    assert match, response.text
    return int(match.group(1))


def _post(client, path: str, htmx=False):
    csrf = page_csrf(client, "/admin/people/import")
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(path, data={"csrf_token": csrf}, headers=headers)


def _apply(client, import_id: int, htmx=False):
    return _post(client, f"/admin/people/import/{import_id}/apply", htmx)


def _discard(client, import_id: int, htmx=False):
    return _post(client, f"/admin/people/import/{import_id}/discard", htmx)


def _people(db) -> dict[str, Person]:
    db.expire_all()
    return {p.external_id: p for p in db.exec(select(Person)).all()}


def _count(db, model) -> int:
    return db.exec(select(func.count()).select_from(model)).one()


def _last_seq(db) -> int:
    return db.exec(select(func.max(AuditEvent.seq))).one() or 0


def _events_after(db, seq: int) -> list[AuditEvent]:
    return list(db.exec(select(AuditEvent).where(AuditEvent.seq > seq)).all())


def test_upload_preview_apply_changes_the_roster_with_an_audit_trail_of_counts(client, db, admin):
    staff_account = make_user(db, email="grace.okafor@school.example")
    before = _last_seq(db)

    preview = _upload(client, ROSTER)
    assert preview.status_code == 200
    assert "Check the changes before applying them" in preview.text
    assert "New: <strong>3</strong>" in preview.text
    assert "Liv Ashworth" in preview.text and "Grace Okafor" in preview.text
    assert "Ignored columns" in preview.text and "Notes" in preview.text
    assert _people(db) == {}  # nothing applied yet
    staged = db.get(RosterImport, _import_id(preview))
    assert staged.status == RosterImportStatus.previewed and staged.row_count == 3
    assert {row["external_id"] for row in staged.people} == {"P1", "P2", "S1"}
    assert "likes art" not in str(staged.people)  # ignored columns are never stored

    result = _apply(client, staged.id)
    assert result.status_code == 200
    assert "The roster was updated" in result.text
    assert "Added: <strong>3</strong>" in result.text
    assert "Staff accounts linked: <strong>1</strong>" in result.text
    people = _people(db)
    assert set(people) == {"P1", "P2", "S1"}
    assert people["P1"].preferred_forename == "Liv" and people["P1"].registration_group == "8B"
    db.refresh(staff_account)
    assert staff_account.person_id == people["S1"].id
    db.refresh(staged)
    assert staged.status == RosterImportStatus.applied and staged.applied_at is not None
    assert staged.people == []  # the rows are gone; only the counts stay
    assert staged.result["created"] == 3

    events = _events_after(db, before)
    actions = [e.action for e in events]
    assert "roster_import.previewed" in actions
    assert "people.synced" in actions
    assert "roster_import.applied" in actions
    applied = next(e for e in events if e.action == "roster_import.applied")
    assert applied.detail["created"] == 3 and applied.detail["rows"] == 3
    trail = str([(e.detail, e.entity_id) for e in events])
    for name in ("Olivia", "Ashworth", "Liv", "Noah", "Grace", "Okafor", "roster.csv", "art"):
        assert name not in trail

    roster = client.get("/admin/people")
    assert "Liv Ashworth" in roster.text and "by a CSV import" in roster.text
    assert "grace.okafor@school.example" in roster.text  # the staff member's linked account


def test_a_second_import_previews_each_change_from_what_to_what(client, db, admin):
    _apply(client, _import_id(_upload(client, ROSTER)))
    changed = ROSTER.replace("8B,Year 8", "9A,Year 9").replace("Noah,Brennan", "Noah,Byrne")
    preview = _upload(client, changed)
    assert "Changed: <strong>2</strong>" in preview.text
    assert "Unchanged: <strong>1</strong>" in preview.text
    assert re.search(r"Registration group</td><td>8B</td><td>9A</td>", preview.text)
    assert re.search(r"Year group</td><td>Year 8</td><td>Year 9</td>", preview.text)
    assert re.search(r"Legal surname</td><td>Brennan</td><td>Byrne</td>", preview.text)
    _apply(client, _import_id(preview))
    assert _people(db)["P2"].surname == "Byrne"


def test_an_invalid_row_is_shown_by_line_and_nothing_is_staged_or_written(client, db, admin):
    before = _last_seq(db)
    staged = _count(db, RosterImport)
    bad = ROSTER + 'P3,pupil,"Ava\nMay",,,,,,\n' + "S2,staff,Ben,Cole,,,,not-an-email,\n"
    response = _upload(client, bad)
    assert response.status_code == 422
    text = response.text
    assert 'role="alert"' in text
    assert '<a href="#line-5">Line 5, Legal Surname: is empty; it is required</a>' in text
    assert 'id="line-5"' in text and 'id="line-7"' in text  # the quoted line break counted
    assert "Line 7, Email: is not an email address" in text
    assert "Apply these changes" not in text
    assert _count(db, RosterImport) == staged
    assert _people(db) == {}
    assert _events_after(db, before) == []


def test_file_level_problems_are_explained(client, db, admin):
    response = _upload(client, "ID,Forename,Surname\n1,A,B\n")
    assert response.status_code == 422
    assert "The required column “Type” is missing" in response.text
    response = _upload(client, b"")
    assert response.status_code == 422 and "The file is empty." in response.text
    csrf = page_csrf(client, "/admin/people/import")
    response = client.post("/admin/people/import", data={"csrf_token": csrf})
    assert response.status_code == 422 and "Choose the CSV file to import." in response.text
    assert _count(db, RosterImport) == 0


def test_whole_roster_import_deactivates_leavers_and_their_accounts(client, db, admin):
    teacher = make_user(db, email="grace.okafor@school.example")
    _apply(client, _import_id(_upload(client, ROSTER)))
    db.refresh(teacher)
    assert teacher.person_id is not None

    without_grace = ROSTER.replace("S1,staff,Grace,Okafor,,,,grace.okafor@school.example,\n", "")
    preview = _upload(client, without_grace, whole=True)
    assert "Leaving: <strong>1</strong>" in preview.text
    assert "Accounts to deactivate: <strong>1</strong>" in preview.text
    assert "grace.okafor@school.example" in preview.text
    assert teacher.is_active  # nothing yet

    result = _apply(client, _import_id(preview))
    assert "Marked as left: <strong>1</strong>" in result.text
    assert "Accounts deactivated: <strong>1</strong>" in result.text
    people = _people(db)
    assert people["S1"].is_active is False and people["P1"].is_active is True
    db.refresh(teacher)
    assert teacher.is_active is False


def test_without_the_whole_roster_box_nobody_leaves(client, db, admin):
    _apply(client, _import_id(_upload(client, ROSTER)))
    preview = _upload(client, HEADER + "P9,pupil,Ada,New,,7A,Year 7,,\n")
    assert "Leaving: <strong>0</strong>" in preview.text
    _apply(client, _import_id(preview))
    assert all(p.is_active for p in _people(db).values())


def test_applying_twice_or_after_a_discard_is_refused(client, db, admin):
    first = _import_id(_upload(client, ROSTER))
    assert _apply(client, first).status_code == 200
    again = _apply(client, first)
    assert again.status_code == 409
    assert "already been applied" in again.text
    assert _count(db, Person) == 3

    second = _import_id(_upload(client, ROSTER.replace("Olivia", "Olive")))
    assert _discard(client, second).status_code == 303
    refused = _apply(client, second)
    assert refused.status_code == 409 and "was discarded" in refused.text
    assert _people(db)["P1"].forename == "Olivia"
    assert _discard(client, second).status_code == 409


def test_another_schools_import_cannot_be_applied_or_discarded(client, db, admin):
    other = School(name="Other School")
    db.add(other)
    db.flush()
    theirs = RosterImport(
        school_id=other.id,
        created_by_id=admin.id,
        row_count=1,
        people=[{"external_id": "X", "kind": "pupil", "forename": "A", "surname": "B"}],
    )
    db.add(theirs)
    db.commit()
    for response in (_apply(client, theirs.id), _discard(client, theirs.id)):
        assert response.status_code == 404
        assert "No such roster import." in response.text
    db.refresh(theirs)
    assert theirs.status == RosterImportStatus.previewed
    assert _count(db, Person) == 0


def test_discard_clears_the_rows(client, db, admin):
    import_id = _import_id(_upload(client, ROSTER))
    response = _discard(client, import_id)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/people/import?notice=discarded"
    page = client.get(response.headers["location"])
    assert "The import was discarded" in page.text
    staged = db.get(RosterImport, import_id)
    db.refresh(staged)
    assert staged.status == RosterImportStatus.discarded and staged.people == []
    assert _count(db, Person) == 0
    event = db.exec(select(AuditEvent).where(AuditEvent.action == "roster_import.discarded")).one()
    assert event.detail == {"rows": 3}


def test_previews_older_than_a_day_are_deleted_and_cannot_be_applied(client, db, admin):
    old = RosterImport(
        school_id=admin.school_id,
        created_by_id=admin.id,
        created_at=utcnow() - timedelta(hours=25),
        row_count=1,
        people=[{"external_id": "X", "kind": "pupil", "forename": "A", "surname": "B"}],
    )
    kept = RosterImport(
        school_id=admin.school_id,
        created_by_id=admin.id,
        created_at=utcnow() - timedelta(days=3),
        status=RosterImportStatus.applied,
        row_count=1,
    )
    db.add_all([old, kept])
    db.commit()
    refused = _apply(client, old.id)
    assert refused.status_code == 409 and "more than 24 hours old" in refused.text

    old_id, kept_id = old.id, kept.id
    _upload(client, ROSTER)
    db.expunge_all()
    assert db.get(RosterImport, old_id) is None  # its children's details are gone
    assert db.get(RosterImport, kept_id) is not None  # counts of applied imports stay


def test_htmx_gets_fragments_and_plain_requests_whole_pages(client, db, admin):
    for response in (
        _upload(client, ROSTER, htmx=True),
        _upload(client, "ID\n1\n", htmx=True),
        client.get("/admin/people/import", headers={"HX-Request": "true"}),
        client.get("/admin/people", headers={"HX-Request": "true"}),
    ):
        assert response.headers["Vary"] == "HX-Request"
        assert "<html" not in response.text
    assert 'id="import-main"' in _upload(client, ROSTER, htmx=True).text
    assert 'id="roster-results"' in client.get("/admin/people", headers={"HX-Request": "true"}).text

    import_id = _import_id(_upload(client, ROSTER, htmx=True))
    applied = _apply(client, import_id, htmx=True)
    assert applied.status_code == 200 and "<html" not in applied.text
    assert "The roster was updated" in applied.text
    discarded = _discard(client, _import_id(_upload(client, ROSTER, htmx=True)), htmx=True)
    assert discarded.status_code == 204
    assert discarded.headers["HX-Redirect"] == "/admin/people/import?notice=discarded"

    for path in ("/admin/people", "/admin/people/import"):
        page = client.get(path)
        assert page.headers["Vary"] == "HX-Request"
        assert "<html" in page.text and 'href="/admin/people"' in page.text  # in the navigation
    full = _upload(client, ROSTER)
    assert "<html" in full.text


@pytest.mark.parametrize("role", [Role.staff, Role.dsl, Role.deputy_dsl, Role.slt])
def test_other_roles_are_refused(app, db, role):
    from fastapi.testclient import TestClient

    user = make_user(db, role=role)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        sign_in(client, user)
        csrf = page_csrf(client, "/account")
        for path in ("/admin/people", "/admin/people/import", "/admin/people/import/template.csv"):
            assert client.get(path).status_code == 403, path
        response = client.post(
            "/admin/people/import",
            data={"csrf_token": csrf},
            files={"file": ("roster.csv", ROSTER.encode(), "text/csv")},
        )
        assert response.status_code == 403
        for action in ("apply", "discard"):
            response = client.post(f"/admin/people/import/1/{action}", data={"csrf_token": csrf})
            assert response.status_code == 403
        assert "Roster" not in client.get("/").text.split("<main")[0]
    assert _count(db, RosterImport) == 0


def test_the_template_downloads_as_csv(client, admin):
    response = client.get("/admin/people/import/template.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.splitlines()[0].startswith("ID,Type,Legal Forename,Legal Surname")


# The roster page ----------------------------------------------------------------------------


def _fill(client, n: int) -> None:
    rows = [
        f"P{i},pupil,Forename{i:03},Surname{i:03},,{7 + i % 5}{'ABC'[i % 3]},Year {7 + i % 5},,"
        for i in range(n)
    ]
    rows.append("S1,staff,Grace,Okafor,,,,grace.okafor@school.example,")
    rows.append("C1,contact,Paula,Parent,,,,,")
    _apply(client, _import_id(_upload(client, HEADER + "\n".join(rows) + "\n")))


def test_an_empty_roster_explains_how_to_fill_it(client, admin):
    page = client.get("/admin/people")
    assert page.status_code == 200
    assert "The roster is empty" in page.text
    assert 'href="/admin/tokens"' in page.text and 'href="/admin/people/import"' in page.text
    assert "has not been synced or imported yet" in page.text


def test_the_roster_counts_searches_filters_and_pages(client, db, admin):
    _fill(client, 60)
    make_user(db, email="grace.okafor@school.example")  # made after: linked by the next import
    _apply(
        client,
        _import_id(
            _upload(client, HEADER + "S1,staff,Grace,Okafor,,,,grace.okafor@school.example,\n")
        ),
    )

    page = client.get("/admin/people")
    assert re.search(r"Pupil</th><td>60</td><td>0</td>", page.text)
    assert re.search(r"Staff</th><td>1</td><td>0</td>", page.text)
    assert re.search(r"Parent or carer</th><td>1</td><td>0</td>", page.text)
    assert "Last updated" in page.text
    names = re.findall(r'<th scope="row">(Forename\d+ Surname\d+)', page.text)
    assert len(names) == 48  # 50 a page: Grace Okafor and Paula Parent sort among them
    assert 'rel="next"' in page.text
    after = re.search(r'after=([^"]+)" rel="next"', page.text).group(1)
    second = client.get(f"/admin/people?after={after}")
    more = re.findall(r'<th scope="row">(Forename\d+ Surname\d+)', second.text)
    assert len(more) == 12 and not set(more) & set(names)
    assert 'rel="next"' not in second.text

    found = client.get("/admin/people", params={"q": "surname007"})
    assert "Forename007 Surname007" in found.text and "Forename008" not in found.text
    by_group = client.get("/admin/people", params={"q": "10a"})
    assert "Forename003 Surname003" in by_group.text  # 10A
    staff = client.get("/admin/people", params={"kind": "staff"})
    assert "Grace Okafor" in staff.text and "Forename001" not in staff.text
    assert "grace.okafor@school.example" in staff.text
    assert "No one on the roster matches" in client.get("/admin/people", params={"q": "%"}).text
    assert client.get("/admin/people", params={"kind": "governor"}).status_code == 422
    assert client.get("/admin/people", params={"after": "nonsense"}).status_code == 422


def test_leavers_are_shown_on_request(client, db, admin):
    _fill(client, 3)
    _apply(
        client,
        _import_id(_upload(client, HEADER + "P0,pupil,Forename000,Surname000,,,,,\n", whole=True)),
    )
    on_roll = client.get("/admin/people")
    assert "Forename001" not in on_roll.text
    left = client.get("/admin/people", params={"active": "no"})
    assert "Forename001 Surname001" in left.text and "Forename000" not in left.text
    both = client.get("/admin/people", params={"active": "all"})
    assert "Forename000" in both.text and "Forename001" in both.text


def test_the_roster_page_issues_the_same_queries_for_few_or_many_people(
    client, db, admin, count_queries
):
    _fill(client, 3)
    with count_queries() as few:
        client.get("/admin/people")
    _fill(client, 120)
    with count_queries() as many:
        client.get("/admin/people")
    assert many.count == few.count
