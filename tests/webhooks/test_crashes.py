"""At least once, whatever happens: workers killed mid-delivery, and workers sharing the load."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta

import httpx
import pytest
from sqlmodel import Session, select

from app.core.types import utcnow
from app.webhooks import delivery, service
from app.webhooks.models import EventType, MessageStatus, OutboxMessage
from tests.factories import make_endpoint

# A worker that does the real steps up to a point, then waits there to be killed.
WORKER = textwrap.dedent("""
    import sys, time, httpx
    from sqlmodel import Session
    import app.models
    from app.core.db import make_engine
    from app.core.types import utcnow
    from app.webhooks import delivery, service
    engine = make_engine(sys.argv[1])
    with Session(engine) as session:
        claimed = service.claim_due(session=session, now=utcnow())
    if sys.argv[2] == "after-send":
        for message_id in [i for ids in claimed.values() for i in ids]:
            with Session(engine) as session:
                outgoing = service.prepare(session=session, message_id=message_id, now=utcnow())
            delivery.post(httpx.Client(), outgoing, utcnow())  # the receiver says 2xx...
    print("ready", flush=True)
    time.sleep(600)  # ...and the worker dies before it records anything
""")


@pytest.mark.parametrize("crash_point", ["after-claim", "after-send"])
def test_a_killed_worker_loses_nothing(committed, committed_engine, receiver, crash_point):
    endpoint = make_endpoint(committed, receiver.url, events=["webhook.test"])
    (message,) = service.enqueue(
        session=committed,
        school_id=endpoint.school_id,
        event_type=EventType.webhook_test,
        endpoint_id=endpoint.id,
        data={"message": "crash test"},
    )
    committed.commit()
    url = committed_engine.url.render_as_string(hide_password=False)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, crash_point], stdout=subprocess.PIPE, cwd=os.getcwd()
    )
    assert worker.stdout.readline().strip() == b"ready"
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    # Until the lease runs out nobody else takes the message; then the next worker does.
    with httpx.Client() as http:
        assert delivery.deliver_due(engine=committed_engine, client=http) == 0
        later = utcnow() + service.LEASE + timedelta(seconds=1)
        assert delivery.deliver_due(engine=committed_engine, client=http, now=lambda: later) == 1
    committed.refresh(message)
    assert message.status == MessageStatus.delivered
    ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert ids == [message.webhook_id] * (2 if crash_point == "after-send" else 1)


def test_four_workers_share_the_outbox_without_sending_twice(
    committed, committed_engine, receiver, backend
):
    if backend != "postgresql":
        pytest.skip("several workers need PostgreSQL's SKIP LOCKED; SQLite runs one at a time")
    endpoint = make_endpoint(committed, receiver.url, events=["webhook.test"])
    for n in range(500):
        service.enqueue(
            session=committed,
            school_id=endpoint.school_id,
            event_type=EventType.webhook_test,
            endpoint_id=endpoint.id,
            data={"n": n},
        )
    committed.commit()

    def work():
        with httpx.Client() as http:
            while delivery.deliver_due(engine=committed_engine, client=http, limit=10):
                pass

    workers = [threading.Thread(target=work) for _ in range(4)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert len(ids) == 500 and len(set(ids)) == 500, time.monotonic() - started
    with Session(committed_engine) as session:
        statuses = {m.status for m in session.exec(select(OutboxMessage)).all()}
    assert statuses == {MessageStatus.delivered}
