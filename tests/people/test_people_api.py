"""The roster API: bulk upsert by external_id, incremental listing, and every bad input."""

from sqlmodel import func, select

from app.audit.models import AuditEvent
from app.auth.models import Scope
from app.people.models import Person
from tests.factories import api_headers


def _pupil(n: int, **overrides) -> dict:
    return {
        "external_id": f"MIS-{n}",
        "kind": "pupil",
        "forename": f"Forename{n}",
        "surname": f"Surname{n}",
        "year_group": "Year 8",
        "registration_group": "8B",
        "upn": f"A12345678901{n % 10}",
        **overrides,
    }


def _count(db) -> int:
    return db.exec(select(func.count()).select_from(Person)).one()


def test_sync_creates_updates_and_leaves_unchanged(client, db):
    headers = api_headers(db, Scope.people_write, Scope.people_read)
    first = client.put("/api/v1/people", json={"people": [_pupil(1), _pupil(2)]}, headers=headers)
    assert first.status_code == 200
    assert first.json() == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "deactivated": 0,
        "accounts_linked": 0,
        "accounts_deactivated": 0,
    }
    second = client.put(
        "/api/v1/people",
        json={"people": [_pupil(1), _pupil(2, registration_group="8C"), _pupil(3)]},
        headers=headers,
    )
    assert second.json() == {
        "created": 1,
        "updated": 1,
        "unchanged": 1,
        "deactivated": 0,
        "accounts_linked": 0,
        "accounts_deactivated": 0,
    }
    assert _count(db) == 3
    event = db.exec(select(AuditEvent).where(AuditEvent.action == "people.synced")).all()[-1]
    assert "Forename" not in str(event.detail)


def test_full_sync_deactivates_people_who_left(client, db):
    headers = api_headers(db, Scope.people_write)
    client.put("/api/v1/people", json={"people": [_pupil(1), _pupil(2)]}, headers=headers)
    response = client.put(
        "/api/v1/people",
        json={"people": [_pupil(1)], "deactivate_missing": True},
        headers=headers,
    )
    assert response.json()["deactivated"] == 1
    leaver = db.exec(select(Person).where(Person.external_id == "MIS-2")).one()
    assert leaver.is_active is False


def test_listing_pages_through_with_a_cursor_and_updated_since(client, db):
    headers = api_headers(db, Scope.people_write, Scope.people_read)
    client.put("/api/v1/people", json={"people": [_pupil(n) for n in range(5)]}, headers=headers)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/people", params=params, headers=headers).json()
        seen += [p["external_id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"MIS-{n}" for n in range(5))
    future = client.get(
        "/api/v1/people", params={"updated_since": "2999-01-01T00:00:00Z"}, headers=headers
    )
    assert future.json() == {"data": [], "next_cursor": None}


def _assert_refused(response, status=422):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


def test_bad_input_is_refused_clearly_and_nothing_is_written(client, db):
    headers = api_headers(db, Scope.people_write, Scope.people_read)
    bad_bodies = [
        b"{not json",
        b'{"people": [{"external_id": "1", "kind": "pupil", "forename": "A", "surname": "B", '
        b'"shoe_size": 9}]}',
        b'{"people": [], "surprise": true}',
        b'{"people": [{"external_id": "1", "kind": "alien", "forename": "A", "surname": "B"}]}',
        b'{"people": [{"external_id": "", "kind": "pupil", "forename": "A", "surname": "B"}]}',
        (
            '{"people": [{"external_id": "1", "kind": "pupil", "forename": "'
            + "x" * 101
            + '", "surname": "B"}]}'
        ).encode(),
        b'{"people": "everyone"}',
    ]
    for body in bad_bodies:
        response = client.put(
            "/api/v1/people", content=body, headers={**headers, "Content-Type": "application/json"}
        )
        problem = _assert_refused(response)
        assert problem["errors"], body
    duplicate = client.put(
        "/api/v1/people", json={"people": [_pupil(1), _pupil(1)]}, headers=headers
    )
    assert "MIS-1" in str(_assert_refused(duplicate)["errors"])
    assert _count(db) == 0
    for params in [
        {"limit": 0},
        {"limit": 100000},
        {"cursor": "!!"},
        {"updated_since": "yesterday"},
        {"updated_since": "2026-01-01T00:00:00"},
    ]:
        _assert_refused(client.get("/api/v1/people", params=params, headers=headers))


def test_too_many_people_in_one_request_is_refused(client, db):
    headers = api_headers(db, Scope.people_write)
    response = client.put(
        "/api/v1/people", json={"people": [_pupil(n) for n in range(5001)]}, headers=headers
    )
    _assert_refused(response)
    assert _count(db) == 0


def test_unknown_api_path_is_a_problem_document(client):
    _assert_refused(client.get("/api/v1/nothing-here"), status=404)


def _staff(n: int, **overrides) -> dict:
    return {
        "external_id": f"STAFF-{n}",
        "kind": "staff",
        "forename": f"Staff{n}",
        "surname": "Member",
        "email": f"teacher{n}@school.example",
        **overrides,
    }


def test_staff_are_linked_to_their_accounts_by_email_and_leavers_lose_access(client, db):
    from app.auth.models import User
    from tests.factories import make_user, sign_in

    teacher = make_user(db, email="teacher1@school.example")
    stays = make_user(db, email="teacher2@school.example")
    headers = api_headers(db, Scope.people_write)
    first = client.put(
        "/api/v1/people",
        json={"people": [_staff(1, email="Teacher1@School.example"), _staff(2), _pupil(1)]},
        headers=headers,
    )
    assert first.json()["accounts_linked"] == 2
    db.expire_all()
    person = db.exec(select(Person).where(Person.external_id == "STAFF-1")).one()
    assert person.email == "teacher1@school.example"
    assert db.get(User, teacher.id).person_id == person.id

    # The teacher is signed in when the full sync says they have left.
    from fastapi.testclient import TestClient

    with TestClient(client.app, base_url="https://testserver", follow_redirects=False) as browser:
        sign_in(browser, teacher)
        assert browser.get("/checklists").status_code == 200
        left = client.put(
            "/api/v1/people",
            json={"people": [_staff(2), _pupil(1)], "deactivate_missing": True},
            headers=headers,
        )
        assert left.json()["deactivated"] == 1
        assert left.json()["accounts_deactivated"] == 1
        assert browser.get("/checklists").status_code == 303  # signed out
    db.expire_all()
    assert db.get(User, teacher.id).is_active is False
    assert db.get(User, stays.id).is_active is True
    actions = db.exec(select(AuditEvent.action).where(AuditEvent.entity_id == str(teacher.id)))
    assert "user.deactivated_as_leaver" in actions.all()

    # An incremental sync that sends someone as inactive does the same.
    gone = client.put(
        "/api/v1/people", json={"people": [_staff(2, is_active=False)]}, headers=headers
    )
    assert gone.json()["updated"] == 1 and gone.json()["accounts_deactivated"] == 1
    # Coming back does not reopen the account by itself: an administrator does that.
    back = client.put("/api/v1/people", json={"people": [_staff(2)]}, headers=headers)
    assert back.json()["updated"] == 1
    db.expire_all()
    assert db.get(User, stays.id).is_active is False


def test_the_last_administrator_is_never_deactivated_by_a_sync(client, db):
    from app.auth.models import Role, User
    from tests.factories import make_user

    admin = make_user(db, role=Role.admin, email="it@school.example")
    headers = api_headers(db, Scope.people_write)
    client.put(
        "/api/v1/people", json={"people": [_staff(9, email="it@school.example")]}, headers=headers
    )
    result = client.put(
        "/api/v1/people", json={"people": [], "deactivate_missing": True}, headers=headers
    ).json()
    assert result["deactivated"] == 1 and result["accounts_deactivated"] == 0
    db.expire_all()
    assert db.get(User, admin.id).is_active is True


def test_aggregator_fields_are_kept_and_checked(client, db):
    headers = api_headers(db, Scope.people_write, Scope.people_read)
    pupil = _pupil(
        1,
        mis_id="4321",
        preferred_forename="Sam",
        upn="a12345678901b",
        email="",
        registration_group=" 8B ",
    )
    assert (
        client.put("/api/v1/people", json={"people": [pupil]}, headers=headers).status_code == 200
    )
    stored = client.get("/api/v1/people", headers=headers).json()["data"][0]
    assert stored["mis_id"] == "4321" and stored["preferred_forename"] == "Sam"
    assert stored["upn"] == "A12345678901B" and stored["email"] is None
    assert stored["registration_group"] == "8B"

    for bad in [
        _pupil(2, upn="12345"),
        _staff(3, upn="A12345678901B"),
        _staff(4, email="not-an-email"),
        _pupil(5, mis_id="x" * 51),
    ]:
        response = client.put("/api/v1/people", json={"people": [bad]}, headers=headers)
        assert _assert_refused(response)["errors"], bad
    assert _count(db) == 1


def test_a_ten_megabyte_body_is_refused_before_it_is_read(client, db):
    headers = api_headers(db, Scope.people_write)
    padding = "x" * (10 * 1024 * 1024)
    body = ('{"people": [], "padding": "' + padding + '"}').encode()
    response = client.put(
        "/api/v1/people", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    problem = _assert_refused(response, status=413)
    assert "batches of up to 5,000" in problem["detail"]

    def chunks():  # no Content-Length: the cap is enforced while the body streams in
        for start in range(0, len(body), 1024 * 1024):
            yield body[start : start + 1024 * 1024]

    streamed = client.put(
        "/api/v1/people", content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    _assert_refused(streamed, status=413)
    assert _count(db) == 0


def test_an_account_made_after_the_sync_is_linked_to_its_roster_entry(client, db):
    from app.audit.service import SYSTEM
    from app.auth import flows as auth_flows
    from app.auth.models import Role, UserCreate

    headers = api_headers(db, Scope.people_write)
    client.put("/api/v1/people", json={"people": [_staff(5)]}, headers=headers)
    person = db.exec(select(Person).where(Person.external_id == "STAFF-5")).one()
    data = UserCreate(
        email="Teacher5@school.example",
        display_name="New teacher",
        role=Role.staff,
        password="a-long-enough-password",
    )
    user = auth_flows.create_user(session=db, school_id=person.school_id, data=data, actor=SYSTEM)
    assert user.person_id == person.id
