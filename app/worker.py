"""The background worker: runs periodic jobs. `haven worker` runs it alone; `haven serve` runs it
in a thread unless HAVEN_WORKER=off."""

import logging
import threading

from sqlalchemy import Engine

from app.jobs.service import run_due_jobs

log = logging.getLogger("haven.worker")
POLL_SECONDS = 30


def run_worker(engine: Engine, stop: threading.Event, poll_seconds: float = POLL_SECONDS) -> None:
    log.info("worker started")
    while not stop.is_set():
        try:
            done = run_due_jobs(engine=engine)
            if done:
                log.info("jobs done: %s", done)
        except Exception:  # the database may be briefly away; try again next round
            log.exception("worker round failed")
        stop.wait(poll_seconds)
    log.info("worker stopped")


def start_in_thread(engine: Engine) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker, args=(engine, stop), name="haven-worker", daemon=True
    )
    thread.start()
    return thread, stop
