"""Fixtures for delivery: a scripted receiver, a committing session, names that resolve."""

import pytest
from sqlmodel import Session

from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def committed(committed_engine):
    """The test's own view: each statement commits, so it never holds a lock the worker needs."""
    engine = committed_engine.execution_options(isolation_level="AUTOCOMMIT")
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture(autouse=True)
def public_dns(monkeypatch):
    """Names in these tests resolve to a public address, without the network."""
    from app.core import http
    from app.webhooks import dependencies

    def resolve(host, port, *args, **kwargs):
        return [(2, 1, 6, "", ("93.184.216.34", port or 443))]

    def check_url(url, *, allow):
        return http.check_url(url, allow=allow, resolve=resolve)

    monkeypatch.setattr(dependencies, "check_url", check_url)
