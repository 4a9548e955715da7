"""On PostgreSQL the worker is woken by the commit that adds a message, not by its next poll."""

import threading
import time

import pytest
from sqlmodel import select

from app.core.config import Settings
from app.jobs.models import JobRun
from app.webhooks.models import MessageStatus, OutboxMessage
from app.worker import run_worker
from tests.factories import make_endpoint, make_incident


def _until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_an_escalation_is_delivered_long_before_the_next_poll(
    committed, committed_engine, receiver
):
    if committed_engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite the worker polls")
    make_endpoint(committed, receiver.url)
    stop = threading.Event()
    poll_seconds = 60
    settings = Settings(dev=True, webhook_allow_cidrs="127.0.0.0/8")  # the receiver is here
    worker = threading.Thread(
        target=run_worker, args=(committed_engine, stop, settings, poll_seconds)
    )
    worker.start()
    try:
        # Its first round (deliveries, then jobs) is over: it now waits out the poll interval.
        assert _until(lambda: committed.get(JobRun, "checklists.yearly") is not None, 30)
        assert _until(lambda: committed.get(JobRun, "checklists.yearly").last_finished_at, 30)
        committed.expire_all()
        make_incident(committed, content_flags=["hate"])
        assert _until(lambda: len(receiver.requests) == 1, 30)
        message = committed.exec(select(OutboxMessage)).one()

        def recorded() -> bool:  # the worker records the answer just after the receiver has it
            committed.rollback()
            committed.refresh(message)
            return message.status == MessageStatus.delivered

        assert _until(recorded, 5)
    finally:
        stop.set()
        worker.join(timeout=poll_seconds + 10)
    assert not worker.is_alive()
