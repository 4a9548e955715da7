"""A real HTTP receiver on 127.0.0.1 whose answers each test scripts."""

import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import Session

from app.webhooks import signing
from app.webhooks.models import WebhookEndpoint
from tests.factories import make_school


class Receiver:
    def __init__(self):
        self.answers: deque = deque()  # (status, headers, delay seconds)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(
                    {
                        "headers": dict(self.headers.items()),
                        "body": body.decode(),
                        "path": self.path,
                    }
                )
                status, headers, delay = (
                    receiver.answers.popleft() if receiver.answers else (200, {}, 0)
                )
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, status: int, headers: dict | None = None, delay: float = 0) -> None:
        self.answers.append((status, headers or {}, delay))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_endpoint(session, url: str, events=("incident.escalated",)) -> WebhookEndpoint:
    """A standard webhook endpoint of the school, committed."""
    endpoint = WebhookEndpoint(
        school_id=make_school(session).id,
        url=url,
        format="standard",
        events=list(events),
        secret=signing.new_secret(),
    )
    session.add(endpoint)
    session.commit()
    return endpoint


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
