"""NUL characters in API requests are refused on every database (PostgreSQL cannot store them:
they used to end in a 500 there, and be stored on SQLite)."""

from sqlmodel import select

from app.auth.models import Scope
from app.policies.models import Policy, PolicyVersion
from tests.factories import api_headers


def _refused(response, field):
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert {"field": field, "message": "contains a NUL character"} in response.json()["errors"]


def test_nul_in_a_json_body_is_refused_and_nothing_is_written(client, db):
    headers = api_headers(db, Scope.policies_write)
    body = {"title": "Phones\u0000", "kind": "mobile_phone", "audience": "pupils"}
    _refused(client.post("/api/v1/policies", json=body, headers=headers), "title")
    assert db.exec(select(Policy)).all() == []

    policy = client.post(
        "/api/v1/policies", json={**body, "title": "Phones"}, headers=headers
    ).json()
    version = {"body": "a\u0000b", "effective_from": "2026-09-01", "review_due": "2027-09-01"}
    response = client.post(
        f"/api/v1/policies/{policy['id']}/versions", json=version, headers=headers
    )
    _refused(response, "body")
    assert db.exec(select(PolicyVersion)).all() == []


def test_nul_deep_in_a_body_and_in_a_query_is_refused(client, db):
    headers = api_headers(db, Scope.incidents_read, Scope.people_write)
    people = {
        "people": [{"external_id": "1", "kind": "pupil", "forename": "A\u0000", "surname": "B"}]
    }
    _refused(client.put("/api/v1/people", json=people, headers=headers), "people.0.forename")
    _refused(client.get("/api/v1/incidents", params={"q": "a\x00"}, headers=headers), "query.q")


def test_an_escaped_backslash_is_not_a_nul(client, db):
    headers = api_headers(db, Scope.policies_write)
    body = {"title": "C:\\u0000 folder", "kind": "other", "audience": "staff"}
    assert client.post("/api/v1/policies", json=body, headers=headers).status_code == 201
