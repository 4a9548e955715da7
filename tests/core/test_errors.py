"""How errors reach API clients: problem documents with the right headers."""

from app.auth.models import Scope
from tests.factories import bearer, make_token


def test_a_wrong_method_names_every_method_the_address_answers_to(client, db):
    raw, _ = make_token(db, Scope.incidents_read)
    response = client.delete("/api/v1/incidents/1", headers=bearer(raw))
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    # GET and PATCH are two routes; Starlette alone named only the first one's method.
    assert response.headers["allow"] == "GET, PATCH"
    assert client.put("/api/v1/incidents").headers["allow"] == "GET, POST"


def test_a_body_that_cannot_be_read_is_a_bad_request(client, db):
    raw, _ = make_token(db, Scope.policies_write)
    response = client.post(
        "/api/v1/policies",
        content=b"R\xe9\xff",  # not UTF-8
        headers={**bearer(raw), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["title"] == "Bad request"


def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after(app, client):
    """PostgreSQL gone: the request may succeed later, so 503, not 500. (tests/resilience
    stops a real PostgreSQL under a running Haven; SQLite kept locked by another writer is
    "Haven is busy" instead, tests/core/test_sqlite_writers.py.)"""
    from sqlalchemy.exc import OperationalError

    from app.core.db import get_session

    def unreachable():
        raise OperationalError("BEGIN", {}, Exception("connection refused"))
        yield  # pragma: no cover

    app.dependency_overrides[get_session] = unreachable
    answer = client.get("/api/v1/incidents", headers={"Authorization": "Bearer hvn_x"})
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "30"
    assert "connection refused" not in answer.text and "BEGIN" not in answer.text
    client.cookies.set("haven_session", "x")  # a page that must look its visitor up
    page = client.get("/incidents")
    assert page.status_code == 503 and "Haven is unavailable" in page.text
    assert page.headers["retry-after"] == "30"
