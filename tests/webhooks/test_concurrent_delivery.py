"""Endpoints are delivered to at once: one that hangs until its timeout holds up no other; one
endpoint's messages still go one at a time, in the order they were written."""

import json
import time

import httpx
from sqlmodel import select

from app import worker
from app.core.types import utcnow
from app.webhooks import delivery, service
from app.webhooks.models import EventType, MessageStatus, OutboxMessage
from tests.factories import make_endpoint, make_incident
from tests.webhooks.receiver import Receiver

HANG_SECONDS = 4


def test_an_endpoint_that_hangs_does_not_hold_up_another_endpoints_escalation(
    committed, committed_engine, receiver, settings
):
    hanging = Receiver()
    try:
        slow = make_endpoint(committed, hanging.url)
        make_endpoint(committed, receiver.url)
        for _ in range(2):
            hanging.answer(200, delay=HANG_SECONDS)  # as if it never answered in time
        # Written first, so a worker sending one message at a time would start with it.
        service.enqueue(
            session=committed,
            school_id=slow.school_id,
            event_type=EventType.webhook_test,
            endpoint_id=slow.id,
            data={"message": "first"},
        )
        committed.commit()
        allowed = settings.model_copy(update={"webhook_allow_cidrs": "127.0.0.0/8"})
        thread, stop = worker.start_in_thread(committed_engine, allowed)
        try:
            while not hanging.requests:  # the worker is stuck on the hanging endpoint
                time.sleep(0.02)
            incident = make_incident(committed, content_flags=["hate"])  # escalates to both
            escalated = time.monotonic()
            while not receiver.requests and time.monotonic() - escalated < HANG_SECONDS:
                time.sleep(0.02)
            arrived = time.monotonic() - escalated
        finally:
            stop.set()
            thread.join(timeout=3 * HANG_SECONDS)
    finally:
        hanging.close()
    assert receiver.requests, "the escalation never reached the other endpoint"
    assert arrived < 1, arrived
    body = json.loads(receiver.requests[0]["body"])
    assert body["data"]["reference"] == incident.reference


def test_one_endpoints_messages_are_sent_one_at_a_time_in_order(
    committed, committed_engine, receiver
):
    tests = ("webhook.test",)
    endpoint = make_endpoint(committed, receiver.url, events=tests)
    other = make_endpoint(committed, receiver.url.replace("/hook", "/other"), events=tests)
    for n in range(6):
        for target in (endpoint, other):
            service.enqueue(
                session=committed,
                school_id=endpoint.school_id,
                event_type=EventType.webhook_test,
                endpoint_id=target.id,
                data={"n": n},
            )
    committed.commit()
    with httpx.Client() as http:
        assert delivery.deliver_due(engine=committed_engine, client=http, now=utcnow) == 12
    for path in ("/hook", "/other"):
        sent = [json.loads(r["body"])["data"]["n"] for r in receiver.requests if r["path"] == path]
        assert sent == list(range(6))
    statuses = {m.status for m in committed.exec(select(OutboxMessage)).all()}
    assert statuses == {MessageStatus.delivered}
