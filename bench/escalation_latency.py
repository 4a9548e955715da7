"""Latency from an escalated incident's commit to the receiver's 2xx, through the real worker.

    .venv/bin/python bench/escalation_latency.py [--escalations 200] [--database-url URL]

Without --database-url it measures SQLite (a temporary file) and PostgreSQL at
postgresql+psycopg://postgres@127.0.0.1:5432/postgres (a throwaway database is made there).
The receiver is a local HTTP server on 127.0.0.1, allow-listed for the run.
"""

import argparse
import json
import statistics
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audit.service import SYSTEM, use_chain_key
from app.core.config import Settings
from app.core.db import make_engine
from app.core.migrations import upgrade_to_head
from app.core.types import utcnow
from app.incidents import flows
from app.incidents.models import IncidentCreate
from app.install import ensure_school
from app.webhooks import signing
from app.webhooks.models import WebhookEndpoint
from app.worker import start_in_thread
from bench.databases import database_urls

SECRET_KEY = "bench-secret-key-0123456789-0123456789"


def receiver(arrivals: dict):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            arrivals[body["data"]["reference"]] = time.perf_counter()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


ESCALATING = {  # matches the default rule harmful-content, which notifies
    "title": "Bench",
    "description": "Bench",
    "platform": "tiktok",
    "category": "malicious_post",
    "offender_type": "parent_carer",
    "target_type": "staff",
    "content_flags": ["hate"],
}


def time_escalations(
    engine, school_id: int, count: int, arrivals: dict, wait_seconds: float = 60
) -> list[float]:
    """Report `count` escalating incidents one after another; the milliseconds from each commit
    to the receiver's 2xx, for those delivered within `wait_seconds` of the last one."""
    committed: dict[str, float] = {}
    for _ in range(count):
        with Session(engine, expire_on_commit=False) as session:
            incident = flows.report_incident(
                session=session,
                school_id=school_id,
                reporter=None,
                actor=SYSTEM,
                data=IncidentCreate(**ESCALATING, occurred_at=utcnow() - timedelta(minutes=5)),
            )
            session.commit()
            committed[incident.reference] = time.perf_counter()
        time.sleep(0.02)  # escalations arrive one after another, as in a school
    deadline = time.monotonic() + wait_seconds
    while not committed.keys() <= arrivals.keys() and time.monotonic() < deadline:
        time.sleep(0.05)
    return sorted((arrivals[ref] - committed[ref]) * 1000 for ref in committed if ref in arrivals)


def median_and_p99(latencies: list[float]) -> tuple[float, float]:
    if not latencies:
        return float("nan"), float("nan")
    return statistics.median(latencies), latencies[max(0, int(len(latencies) * 0.99) - 1)]


def measure(url: str, count: int) -> tuple[str, float, float, int]:
    engine = use_chain_key(make_engine(url), SECRET_KEY)
    upgrade_to_head(engine)
    arrivals: dict[str, float] = {}
    server = receiver(arrivals)
    settings = Settings(
        dev=True, database_url=url, webhook_allow_cidrs="127.0.0.0/8", log_level="warning"
    )
    with Session(engine, expire_on_commit=False) as session:
        school = ensure_school(session=session, settings=settings)
        session.add(
            WebhookEndpoint(
                school_id=school.id,
                url=f"http://127.0.0.1:{server.server_port}/hook",
                format="standard",
                events=["incident.escalated"],
                secret=signing.new_secret(),
            )
        )
        session.commit()
    thread, stop = start_in_thread(engine, settings)
    latencies = time_escalations(engine, school.id, count, arrivals)
    stop.set()
    thread.join(timeout=10)
    server.shutdown()
    engine.dispose()
    return engine.dialect.name, *median_and_p99(latencies), len(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--escalations", type=int, default=200)
    args = parser.parse_args()
    results = []
    for url in database_urls(args.database_url):
        results.append(measure(url, args.escalations))
    print(f"{args.escalations} escalations: commit to the receiver's 2xx")
    print(f"{'database':<12}{'delivered':>10}{'median ms':>11}{'p99 ms':>10}")
    for database, median, p99, delivered in results:
        print(f"{database:<12}{delivered:>10}{median:>11.1f}{p99:>10.1f}")


if __name__ == "__main__":
    main()
