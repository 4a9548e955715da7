"""The roster API: bulk upsert by external_id, incremental listing, and every bad input."""

from sqlmodel import func, select

from app.audit.models import AuditEvent
from app.auth.models import Scope
from app.people.models import Person
from tests.factories import make_token


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


def _auth(db, *scopes):
    raw, _ = make_token(db, *scopes)
    return {"Authorization": f"Bearer {raw}"}


def _count(db) -> int:
    return db.exec(select(func.count()).select_from(Person)).one()


def test_sync_creates_updates_and_leaves_unchanged(client, db):
    headers = _auth(db, Scope.people_write, Scope.people_read)
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
    headers = _auth(db, Scope.people_write)
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
    headers = _auth(db, Scope.people_write, Scope.people_read)
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
    headers = _auth(db, Scope.people_write, Scope.people_read)
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
    headers = _auth(db, Scope.people_write)
    response = client.put(
        "/api/v1/people", json={"people": [_pupil(n) for n in range(5001)]}, headers=headers
    )
    _assert_refused(response)
    assert _count(db) == 0


def test_unknown_api_path_is_a_problem_document(client):
    _assert_refused(client.get("/api/v1/nothing-here"), status=404)
