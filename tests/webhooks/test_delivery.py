"""Durable, signed delivery: the outbox is written with the escalation, messages reach a real
receiver signed as Standard Webhooks says, and failures follow the retry schedule."""

import json
import socket
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select
from standardwebhooks import Webhook

from app.audit.models import AuditEvent
from app.audit.service import SYSTEM
from app.core.types import utcnow
from app.incidents import flows
from app.incidents.models import IncidentUpdate
from app.webhooks import delivery, payloads, service, signing
from app.webhooks.models import (
    EndpointFormat,
    EventType,
    MessageStatus,
    OutboxMessage,
)
from tests.factories import incident_data, make_endpoint, make_incident

BASE_URL = "https://haven.test"
MARKERS = ["MARKER-NAME-Zx81", "MARKER-DESC-Qq42", "MARKER-TITLE-Jj07", "MARKER-NOTE-Pp33"]


def _reload(session, row) -> None:
    """See what the worker committed: end this session's snapshot first."""
    session.rollback()
    session.refresh(row)


def _deliver(engine, at=None, client=None):
    clock = (lambda: at) if at else utcnow
    if client is not None:
        return delivery.deliver_due(engine=engine, client=client, now=clock, base_url=BASE_URL)
    with httpx.Client(follow_redirects=False, timeout=2) as http:
        return delivery.deliver_due(engine=engine, client=http, now=clock, base_url=BASE_URL)


def test_an_escalation_writes_its_outbox_row_only_when_it_commits(db):
    endpoint = make_endpoint(db, "https://hooks.example.org/in")
    savepoint = db.begin_nested()
    flows.report_incident(
        session=db,
        school_id=endpoint.school_id,
        reporter=None,
        actor=SYSTEM,
        data=incident_data(content_flags=["hate"]),
    )
    assert len(db.exec(select(OutboxMessage)).all()) == 1
    savepoint.rollback()
    assert db.exec(select(OutboxMessage)).all() == []
    make_incident(db, content_flags=["hate"])
    (message,) = db.exec(select(OutboxMessage)).all()
    assert message.event_type == EventType.incident_escalated
    assert message.payload["data"]["rules"] == ["harmful-content"]


def test_a_message_arrives_signed_and_thin(committed, committed_engine, receiver):
    endpoint = make_endpoint(committed, receiver.url)
    incident = make_incident(
        committed,
        title=MARKERS[2],
        description=MARKERS[1],
        content_flags=["indecent_image"],
        people=[{"label": MARKERS[0], "role": "victim"}],
    )
    flows.update_incident(
        session=committed,
        incident=incident,
        actor=SYSTEM,
        data=IncidentUpdate(outcome=MARKERS[3]),
    )
    committed.commit()
    assert _deliver(committed_engine) == 1
    (request,) = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    payload = Webhook(endpoint.secret).verify(request["body"], headers)
    assert payload["type"] == "incident.escalated"
    assert set(payload["data"]) == {
        "incident_id",
        "reference",
        "severity",
        "rules",
        "required_actions",
        "url",
    }
    assert payload["data"]["reference"] == incident.reference
    assert payload["data"]["severity"] == "critical"
    for marker in MARKERS:
        assert marker not in request["body"] and marker not in json.dumps(headers)
    message = committed.exec(select(OutboxMessage)).one()
    _reload(committed, message)
    assert message.status == MessageStatus.delivered and message.webhook_id == headers["webhook-id"]


def test_failures_follow_the_retry_schedule_with_the_same_id(committed, committed_engine, receiver):
    make_endpoint(committed, receiver.url)
    make_incident(committed, content_flags=["abusive"])
    receiver.answer(500)
    now = utcnow()
    _deliver(committed_engine, at=now)
    message = committed.exec(select(OutboxMessage)).one()
    _reload(committed, message)
    assert message.status == MessageStatus.pending and message.attempts == 1
    assert timedelta(seconds=5) <= message.next_attempt_at - now <= timedelta(seconds=5.5)
    assert _deliver(committed_engine, at=now + timedelta(seconds=1)) == 0  # not due yet
    receiver.answer(200)
    _deliver(committed_engine, at=now + timedelta(seconds=6))
    _reload(committed, message)
    assert message.status == MessageStatus.delivered and message.attempts == 2
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert ids == {message.webhook_id}


def test_410_disables_the_endpoint(committed, committed_engine, receiver):
    endpoint = make_endpoint(committed, receiver.url)
    make_incident(committed, content_flags=["abusive"])
    receiver.answer(410)
    _deliver(committed_engine)
    _reload(committed, endpoint)
    assert endpoint.is_active is False and "410" in endpoint.disabled_reason
    message = committed.exec(select(OutboxMessage)).one()
    _reload(committed, message)
    assert message.status == MessageStatus.failed


def test_429_retry_after_is_honoured(committed, committed_engine, receiver):
    make_endpoint(committed, receiver.url)
    make_incident(committed, content_flags=["abusive"])
    receiver.answer(429, {"Retry-After": "120"})
    now = utcnow()
    _deliver(committed_engine, at=now)
    message = committed.exec(select(OutboxMessage)).one()
    _reload(committed, message)
    assert message.next_attempt_at - now >= timedelta(seconds=120)


def test_a_redirect_is_not_followed(committed, committed_engine, receiver):
    make_endpoint(committed, receiver.url)
    make_incident(committed, content_flags=["abusive"])
    receiver.answer(308, {"Location": "http://169.254.169.254/latest/meta-data"})
    _deliver(committed_engine)
    assert len(receiver.requests) == 1
    message = committed.exec(select(OutboxMessage)).one()
    _reload(committed, message)
    assert message.status == MessageStatus.pending and message.last_status_code == 308


def test_a_slow_receiver_times_out_and_is_retried(committed, committed_engine, receiver):
    make_endpoint(committed, receiver.url)
    make_incident(committed, content_flags=["abusive"])
    receiver.answer(200, delay=1.5)
    with httpx.Client(follow_redirects=False, timeout=0.3) as quick:
        _deliver(committed_engine, client=quick)
    message = committed.exec(select(OutboxMessage)).one()
    _reload(committed, message)
    assert message.status == MessageStatus.pending and "Timeout" in message.last_error


def test_an_exhausted_message_is_failed_and_audited(committed, committed_engine, receiver):
    make_endpoint(committed, receiver.url)
    make_incident(committed, content_flags=["abusive"])
    at = utcnow()
    for _ in range(len(service.RETRY_DELAYS) + 1):
        receiver.answer(503)
        _deliver(committed_engine, at=at)
        at += timedelta(hours=12)
    message = committed.exec(select(OutboxMessage)).one()
    _reload(committed, message)
    assert message.status == MessageStatus.failed and message.attempts == 8
    actions = [e.action for e in committed.exec(select(AuditEvent)).all()]
    assert "webhook.exhausted" in actions


def test_during_a_rotation_both_secrets_sign(committed, committed_engine, receiver):
    endpoint = make_endpoint(committed, receiver.url)
    old = endpoint.secret
    new = service.rotate_secret(session=committed, endpoint=endpoint, actor=SYSTEM)
    committed.commit()
    make_incident(committed, content_flags=["abusive"])
    _deliver(committed_engine)
    request = receiver.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(request["body"], headers)["type"] == "incident.escalated"


@pytest.mark.parametrize(
    ("fmt", "key"), [(EndpointFormat.slack, "text"), (EndpointFormat.teams, "@type")]
)
def test_teams_and_slack_get_the_same_thin_notice(committed, committed_engine, receiver, fmt, key):
    make_endpoint(committed, receiver.url, fmt=fmt)
    incident = make_incident(committed, title=MARKERS[2], content_flags=["abusive"])
    _deliver(committed_engine)
    body = json.loads(receiver.requests[0]["body"])
    assert key in body and incident.reference in json.dumps(body)
    assert MARKERS[2] not in json.dumps(body)


def test_an_email_endpoint_gets_the_thin_notice_by_smtp(committed, committed_engine, settings):
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope.content.decode())
            return "250 OK"

    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp_settings = settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_starttls": False,
                "smtp_from": "haven@school.example",
            }
        )
        make_endpoint(committed, "dsl@school.example", fmt=EndpointFormat.email)
        incident = make_incident(committed, title=MARKERS[2], content_flags=["abusive"])
        with httpx.Client() as http:
            delivery.deliver_due(
                engine=committed_engine,
                client=http,
                send_email=delivery.email_sender_for(smtp_settings),
                base_url=BASE_URL,
            )
    finally:
        controller.stop()
    (message,) = inbox.messages
    assert incident.reference in message and MARKERS[2] not in message
    assert f"Open in Haven: {BASE_URL}/incidents/{incident.id}" in message
    row = committed.exec(select(OutboxMessage)).one()
    _reload(committed, row)
    assert row.status == MessageStatus.delivered and row.last_status_code == 250


def test_a_status_change_sends_incident_updated(db):
    endpoint = make_endpoint(db, "https://hooks.example.org/in", events=("incident.updated",))
    incident = make_incident(db)
    flows.update_incident(
        session=db, incident=incident, data=IncidentUpdate(title="Renamed"), actor=SYSTEM
    )
    assert db.exec(select(OutboxMessage)).all() == []  # not a status change
    flows.update_incident(
        session=db,
        incident=incident,
        data=IncidentUpdate(status="in_progress"),
        actor=SYSTEM,
    )
    (message,) = db.exec(select(OutboxMessage)).all()
    assert message.endpoint_id == endpoint.id and message.event_type == EventType.incident_updated
    sent = service.prepare(session=db, message_id=message.id, now=utcnow(), base_url=BASE_URL)
    assert sent.event["data"] == {
        "incident_id": incident.id,
        "reference": incident.reference,
        "status": "in_progress",
        "severity": "low",
        "url": f"https://haven.test/incidents/{incident.id}",
    }


def test_the_link_is_made_at_delivery_with_the_base_url(committed, committed_engine, receiver):
    endpoint = make_endpoint(committed, receiver.url)
    incident = make_incident(committed, content_flags=["abusive"])
    message = committed.exec(select(OutboxMessage)).one()
    assert message.payload["data"]["path"] == f"/incidents/{incident.id}"
    assert "url" not in message.payload["data"]
    with httpx.Client(follow_redirects=False, timeout=2) as http:
        delivery.deliver_due(engine=committed_engine, client=http, base_url=BASE_URL + "/")
    (request,) = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    payload = Webhook(endpoint.secret).verify(request["body"], headers)
    assert list(payload["data"])[-1] == "url" and "path" not in payload["data"]
    assert payload["data"]["url"] == f"{BASE_URL}/incidents/{incident.id}"


def test_a_message_stored_with_its_url_is_delivered_unchanged(
    committed, committed_engine, receiver
):
    """Messages written before links were made at delivery carry the full `url` already."""
    endpoint = make_endpoint(committed, receiver.url, events=("incident.updated",))
    data = {
        "incident_id": 7,
        "reference": "INC-2026-0007",
        "status": "in_progress",
        "severity": "low",
        "url": "https://old.haven.test/incidents/7",
    }
    committed.add(
        OutboxMessage(
            school_id=endpoint.school_id,
            endpoint_id=endpoint.id,
            webhook_id=signing.new_webhook_id(),
            event_type=EventType.incident_updated,
            payload=payloads.envelope(EventType.incident_updated, data, utcnow()),
        )
    )
    committed.commit()
    assert _deliver(committed_engine) == 1
    (request,) = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert Webhook(endpoint.secret).verify(request["body"], headers)["data"] == data
