"""Per-token rate limits: 429 with Retry-After once a token's allowance is spent."""

import pytest
from sqlmodel import func, select

from app.auth.models import Scope
from app.auth.rate_limit import TokenRateLimiter
from app.core.config import Settings
from app.people.models import Person
from tests.factories import bearer, make_token


def test_a_token_over_its_limit_gets_429_with_retry_after_and_nothing_written(app, client, db):
    app.state.rate_limiter = TokenRateLimiter("3/minute")
    busy, _ = make_token(db, Scope.people_read, Scope.people_write, name="busy")
    quiet, _ = make_token(db, Scope.people_read, name="quiet")
    for _ in range(3):
        assert client.get("/api/v1/people", headers=bearer(busy)).status_code == 200

    person = {"external_id": "P1", "kind": "pupil", "forename": "A", "surname": "B"}
    refused = client.put("/api/v1/people", json={"people": [person]}, headers=bearer(busy))
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "Retry-After" in refused.json()["detail"]
    assert db.exec(select(func.count()).select_from(Person)).one() == 0

    # Another token has its own allowance.
    assert client.get("/api/v1/people", headers=bearer(quiet)).status_code == 200


def test_unknown_tokens_are_not_counted_against_real_ones(app, client, db):
    app.state.rate_limiter = TokenRateLimiter("2/minute")
    raw, _ = make_token(db, Scope.people_read)
    for _ in range(5):
        assert client.get("/api/v1/people", headers=bearer("hvn_nonsense")).status_code == 401
    assert client.get("/api/v1/people", headers=bearer(raw)).status_code == 200


@pytest.mark.parametrize("value", ["lots", "0/minute", "-1/second", "10 per fortnight"])
def test_a_nonsense_rate_limit_setting_is_refused(value):
    with pytest.raises(ValueError, match="count per period"):
        Settings(dev=True, api_rate_limit=value)
