"""The background worker: delivers webhook messages (at once on PostgreSQL, woken by the commit
that adds them) and runs periodic jobs. `haven worker` runs it alone; `haven serve` runs it in a
thread unless HAVEN_WORKER=off."""

import contextlib
import logging
import os
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy import Engine

from app.core.config import Settings
from app.core.errors import database_error_reason, is_database_busy, is_database_unavailable
from app.jobs.service import hold_lease, run_due_jobs
from app.webhooks import delivery
from app.webhooks.wakeup import OutboxWakeup

log = logging.getLogger("haven.worker")
DELIVERY_POLL_SECONDS = 0.5
JOBS_EVERY_SECONDS = 30
SQLITE_LEASE = "lease:worker"  # SQLite has no SKIP LOCKED: one worker at a time delivers


def run_worker(
    engine: Engine,
    stop: threading.Event,
    settings: Settings | None = None,
    poll_seconds: float = DELIVERY_POLL_SECONDS,
) -> None:
    log.info("worker started")
    holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    sqlite = engine.dialect.name == "sqlite"
    client = delivery.client_for(settings)
    deliveries = delivery.Deliveries(
        engine=engine,
        client=client,
        send_email=delivery.email_sender_for(settings),
        base_url=settings.base_url if settings is not None else "",
    )
    wakeup = OutboxWakeup(engine)
    with contextlib.suppress(Exception):  # the database may be away: the loop says so
        wakeup.listen()
    last_jobs = 0.0
    database_away = False  # said once when the database goes, once when it is back
    try:
        while not stop.is_set():
            try:
                if sqlite and not hold_lease(
                    engine=engine, name=SQLITE_LEASE, holder=holder, ttl=timedelta(seconds=30)
                ):
                    stop.wait(5)
                    continue
                deliveries.start_due()  # sent on threads of their own, endpoints at once
                if time.monotonic() - last_jobs >= JOBS_EVERY_SECONDS:
                    last_jobs = time.monotonic()
                    anchors = settings.evidence_dir if settings is not None else None
                    if done := run_due_jobs(engine=engine, evidence_dir=anchors):
                        log.info("jobs done: %s", done)
                if database_away:
                    log.warning("worker: the database can be reached again")
                    database_away = False
            except Exception as exc:
                if is_database_busy(exc):  # SQLite, busy with other writers: next round
                    log.info("worker: the database is busy; trying again in %s s", poll_seconds)
                elif not is_database_unavailable(exc):
                    log.exception("worker round failed")
                elif not database_away:  # an outage is not a bug: no trace, and not every round
                    log.warning(
                        "worker: the database cannot be reached (%s); trying again every %s s",
                        database_error_reason(exc),
                        poll_seconds,
                    )
                    database_away = True
            wakeup.wait(stop, poll_seconds)
    finally:
        wakeup.close()
        deliveries.close()
        client.close()
    log.info("worker stopped")


def start_in_thread(
    engine: Engine, settings: Settings | None = None
) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker, args=(engine, stop, settings), name="haven-worker", daemon=True
    )
    thread.start()
    return thread, stop
