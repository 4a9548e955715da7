"""PostgreSQL stops while Haven runs, and starts again.

Haven runs as its own process (`python -m app serve`, with the webhook worker in-process:
HAVEN_WORKER=on) on a throwaway PostgreSQL cluster. While the cluster is down, pages answer a
plain 503 page and the API a 503 problem document, both with Retry-After; /healthz stays up and
/readyz says the database is unreachable; a report sent meanwhile writes nothing. When the
cluster is back, Haven's very first request succeeds, and its worker delivers again; the same
after a restart Haven did not see. Last, the cluster is stopped in immediate mode amid concurrent
reports, cutting connections mid-transaction: every report is whole or absent, and sending the
unanswered ones again with their Idempotency-Keys saves each exactly once.
"""

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import sqlalchemy as sa
from sqlmodel import Session

from app.audit.models import AuditEvent
from app.audit.service import SYSTEM, verify_chain
from app.auth.models import Scope, User
from app.core.db import make_engine
from app.core.migrations import upgrade_to_head
from app.core.types import utcnow
from app.incidents.models import Incident, TimelineEntry
from app.webhooks import service as webhooks_service
from app.webhooks.models import EndpointIn, OutboxMessage
from tests.conftest import keyed_engine
from tests.factories import PASSWORD, csrf_from, make_token, make_user
from tests.processes import wait_for
from tests.resilience.reports import (
    CLIENTS,
    assert_every_incident_is_whole,
    assert_resending_makes_one_incident_per_key,
    report,
    send_all,
)

LEAKS = ("Traceback", "sqlalchemy", "psycopg", "OperationalError")


def escalating(title: str) -> dict:
    """A report that escalates (a pupil is targeted), so it also writes an outbox message."""
    return {**report(1), "title": title}


class Inbox(list):
    url = ""


@contextmanager
def webhook_receiver() -> Iterator[Inbox]:
    """A DSL inbox relay on this machine: records the body of every message it is sent."""
    received = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_port}/haven"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def browser(haven) -> httpx.Client:
    """A client that keeps Haven's cookies. They are `Secure`, and this is plain http on the
    loopback, so the client is told to send them back anyway, as browsers do for localhost."""
    client = haven.client()

    def keep_cookies(response: httpx.Response) -> None:
        for cookie in client.cookies.jar:
            cookie.secure = False

    client.event_hooks["response"] = [keep_cookies]
    return client


def sign_in(client: httpx.Client, user: User) -> None:
    token = csrf_from(client.get("/login").text)
    answer = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text


def counts(url: str) -> dict[str, int]:
    """What is in the database, read on a connection of our own (not through Haven)."""
    engine = make_engine(url, pool_pre_ping=False)
    try:
        with engine.connect() as connection:
            return {
                model.__tablename__: connection.execute(
                    sa.select(sa.func.count()).select_from(model)
                ).scalar_one()
                for model in (Incident, AuditEvent, OutboxMessage, TimelineEntry)
            }
    finally:
        engine.dispose()


def assert_unavailable_page(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text[:500]
    assert answer.headers["content-type"].startswith("text/html")
    assert int(answer.headers["retry-after"]) > 0
    assert "Haven is unavailable" in answer.text
    assert "try again in a minute" in answer.text
    assert not any(leak in answer.text for leak in LEAKS), answer.text


def assert_unavailable_problem(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text[:500]
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) > 0
    problem = answer.json()
    assert problem["status"] == 503 and problem["title"] == "Service unavailable"
    assert "Send the request again" in problem["detail"]
    assert not any(leak in answer.text for leak in LEAKS), answer.text


def test_haven_answers_503_while_postgresql_is_down_and_recovers_by_itself(
    postgres_cluster, haven_process
):
    url = postgres_cluster.url
    engine = keyed_engine(url)
    upgrade_to_head(engine)
    with webhook_receiver() as inbox, Session(engine, expire_on_commit=False) as db:
        staff = make_user(db)
        raw, _ = make_token(db, Scope.incidents_write, Scope.incidents_read)
        webhooks_service.create_endpoint(
            session=db,
            school_id=staff.school_id,
            data=EndpointIn(url=inbox.url, events=["incident.escalated"], format="standard"),
            actor=SYSTEM,
            check_url=lambda url: None,
        )
        db.commit()
        engine.dispose()

        haven = haven_process(
            database_url=url, worker="on", webhook_allow_cidrs="127.0.0.1/32"
        ).start()
        api = haven.client(headers={"Authorization": f"Bearer {raw}"})
        person = browser(haven)

        # It works, pages, API and worker alike.
        assert person.get("/readyz").status_code == 200
        sign_in(person, staff)
        assert person.get("/incidents").status_code == 200
        form_token = csrf_from(person.get("/report").text)
        first = api.post("/api/v1/incidents", json=escalating("Before the outage"))
        assert first.status_code == 201, first.text
        wait_for(lambda: len(inbox) == 1, timeout=15, what="the first webhook")
        before = counts(url)

        postgres_cluster.stop("fast")

        assert person.get("/healthz").status_code == 200
        ready = person.get("/readyz")
        assert ready.status_code == 503 and ready.json()["reason"] == "database unreachable"
        assert_unavailable_page(person.get("/incidents"))
        assert_unavailable_page(person.get("/report"))
        fragment = person.get("/incidents", headers={"HX-Request": "true"})
        assert_unavailable_page(fragment)
        assert fragment.headers["hx-retarget"] == "#flash"  # shown where htmx shows messages
        assert_unavailable_problem(api.get("/api/v1/incidents"))
        assert_unavailable_problem(api.post("/api/v1/incidents", json=escalating("During")))
        assert_unavailable_page(
            person.post(
                "/report",
                data={
                    "csrf_token": form_token,
                    "title": "During the outage, on the form",
                    "description": "Sent while the database was down.",
                    "occurred_at": utcnow().strftime("%Y-%m-%dT%H:%M"),
                    "platform": "tiktok",
                    "category": "harassment",
                    "offender_type": "pupil",
                    "target_type": "pupil",
                },
            )
        )

        postgres_cluster.start()
        # Nothing of the reports sent during the outage was written, not even in part.
        assert counts(url) == before

        # Haven's first request after the outage succeeds: its pooled connections are dead,
        # and it notices before using one (pool_pre_ping).
        listed = api.get("/api/v1/incidents")
        assert listed.status_code == 200, listed.text
        assert [i["title"] for i in listed.json()["data"]] == ["Before the outage"]
        assert person.get("/readyz").status_code == 200
        assert person.get("/incidents").status_code == 200
        after = api.post("/api/v1/incidents", json=escalating("After the outage"))
        assert after.status_code == 201, after.text
        # The in-process worker carried on too: the new escalation reaches the inbox.
        wait_for(lambda: len(inbox) == 2, timeout=15, what="the webhook after the outage")
        assert inbox[1]["data"]["reference"] == after.json()["reference"]

        # A restart between two requests (say, a nightly update of PostgreSQL) leaves every
        # pooled connection dead without Haven noticing; the next request still succeeds.
        postgres_cluster.stop("fast")
        postgres_cluster.start()
        assert api.get("/api/v1/incidents").status_code == 200
        assert person.get("/incidents").status_code == 200

        # PostgreSQL dies (immediate stop: connections cut mid-transaction) amid concurrent
        # reports: those cut off are answered 503, and what was committed is whole. (Which
        # reports were in flight is up to chance; what is checked holds whatever it was.)
        already = counts(url)["incident"]
        requests = [(str(uuid.uuid4()), report(n)) for n in range(CLIENTS * 5)]
        created, unsure = send_all(
            haven.url, raw, requests, after=6, fault=lambda: postgres_cluster.stop("immediate")
        )
        postgres_cluster.start()
        assert_every_incident_is_whole(url, created)
        assert_resending_makes_one_incident_per_key(
            haven.url, url, raw, requests, created, unsure, before=already
        )

    engine = keyed_engine(url)
    with Session(engine) as db:
        checked, problems = verify_chain(session=db)
    engine.dispose()
    assert problems == [] and checked > before["audit_event"]
    log = haven.log
    assert "database unavailable" in log  # each refused request is logged, on one line
    assert "Exception in ASGI application" not in log  # and none of them as a crash
    assert "worker round failed" not in log  # an outage the worker meets is one line, no trace
