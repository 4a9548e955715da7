"""The background worker: delivers webhook messages and runs periodic jobs. `haven worker` runs it
alone; `haven serve` runs it in a thread unless HAVEN_WORKER=off."""

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy import Engine

from app.core.config import Settings
from app.jobs.service import hold_lease, run_due_jobs
from app.webhooks import delivery

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
    send_email = delivery.email_sender_for(settings)
    last_jobs = 0.0
    try:
        while not stop.is_set():
            try:
                if sqlite and not hold_lease(
                    engine=engine, name=SQLITE_LEASE, holder=holder, ttl=timedelta(seconds=30)
                ):
                    stop.wait(5)
                    continue
                delivery.deliver_due(engine=engine, client=client, send_email=send_email)
                if time.monotonic() - last_jobs >= JOBS_EVERY_SECONDS:
                    last_jobs = time.monotonic()
                    base_url = settings.base_url if settings is not None else ""
                    if done := run_due_jobs(engine=engine, base_url=base_url):
                        log.info("jobs done: %s", done)
            except Exception:  # the database may be briefly away; try again next round
                log.exception("worker round failed")
            stop.wait(poll_seconds)
    finally:
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
