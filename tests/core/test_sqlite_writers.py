"""SQLite on one machine, under a burst of writes: writers wait their turn and all succeed; one
that cannot have its turn in time is told so plainly and keeps what it typed; and a request
waiting for the write lock never stops the server answering others."""

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import anyio
import httpx
import sqlalchemy as sa
import uvicorn
from anyio import to_thread
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth.models import Scope, UserSession
from app.core.config import Settings
from app.core.db import WriterQueue, make_engine
from app.core.migrations import upgrade_to_head
from app.core.types import utcnow
from app.incidents.models import Incident
from app.main import create_app
from app.policies.models import PolicyAcknowledgement
from bench import burst
from tests.conftest import TEST_SECRET
from tests.factories import bearer, csrf_from, incident_data, make_token

WRITERS = 100


def _haven(tmp_path, **engine_options) -> tuple[sa.Engine, Settings]:
    url = f"sqlite:///{tmp_path / 'haven.db'}"
    engine = make_engine(url, **engine_options)
    upgrade_to_head(engine)
    settings = Settings(
        dev=False,
        secret_key=TEST_SECRET,
        database_url=url,
        evidence_dir=tmp_path / "evidence",
        school_name="Test School",
        worker="off",
    )
    return engine, settings


@contextmanager
def serving(app) -> Iterator[str]:
    """The app served by uvicorn on a free port of 127.0.0.1, in a thread of this process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _count(engine: sa.Engine, model) -> int:
    with Session(engine) as session:
        return session.exec(select(sa.func.count()).select_from(model)).one()


def test_a_hundred_staff_writing_at_once_on_sqlite_are_all_saved(tmp_path):
    """Half acknowledge the new policy, half report a concern, all at the same moment. Before,
    a quarter of them were answered "Haven cannot reach its database" and lost what they sent."""
    engine, settings = _haven(tmp_path)
    app = create_app(settings=settings, engine=engine)
    prepared = burst.prepare(engine, settings, WRITERS)
    kinds = ["acknowledge", "report"] * (WRITERS // 2)
    with serving(app) as url:
        answers = burst.send(url, prepared, kinds)
    refused = [(kind, status, said) for kind, status, _, said in answers if status != 303]
    assert refused == []
    assert _count(engine, PolicyAcknowledgement) == WRITERS // 2
    assert _count(engine, Incident) == WRITERS // 2
    engine.dispose()


def _signed_in(client: TestClient, engine: sa.Engine, settings: Settings) -> burst.Burst:
    prepared = burst.prepare(engine, settings, 1)
    client.cookies.set("haven_session", prepared.sessions[0])
    return prepared


def test_a_write_that_cannot_have_its_turn_is_shown_again_with_what_was_typed(tmp_path):
    engine, settings = _haven(tmp_path, write_wait=0.5)
    app = create_app(settings=settings, engine=engine)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        prepared = _signed_in(client, engine, settings)
        token = csrf_from(client.get("/report").text)
        form = {**burst.report_form(1), "csrf_token": token}
        form["description"] = "Comments naming Mr Example under the sports day post."
        holder = engine.connect()
        holder.begin()  # another writer of this process holds the turn for longer than it waits
        try:
            report = client.post("/report", data=form)
            acknowledgement = client.post(
                f"/policies/{prepared.policy_id}/acknowledge",
                data={"number": str(prepared.version), "csrf_token": token},
            )
        finally:
            holder.rollback()
            holder.close()
        assert report.status_code == 503
        assert "Haven is busy" in report.text and "cannot reach" not in report.text
        assert form["title"] in report.text and "Comments naming Mr Example" in report.text
        assert acknowledgement.status_code == 503
        assert "Haven is busy" in acknowledgement.text
        assert "I have read and understood version" in acknowledgement.text  # the form, again
        assert _count(engine, Incident) == 0 and _count(engine, PolicyAcknowledgement) == 0
        # Once the other writer is done, the same form goes through.
        assert client.post("/report", data=form).status_code == 303
    assert _count(engine, Incident) == 1
    engine.dispose()


def test_the_server_answers_while_a_report_waits_for_the_write_lock(tmp_path):
    """Another process (here a plain sqlite3 connection) takes the write lock just after the
    report's first commit (its session's last use). Before, the report then waited for the lock
    on the event loop, and the whole server, /healthz included, stood still."""
    engine, settings = _haven(tmp_path)
    app = create_app(settings=settings, engine=engine)
    prepared = burst.prepare(engine, settings, 1)
    other = sqlite3.connect(
        str(tmp_path / "haven.db"), isolation_level=None, check_same_thread=False
    )
    locked = threading.Event()

    def lock_after_first_commit(_session) -> None:
        if not locked.is_set():
            other.execute("BEGIN IMMEDIATE")
            locked.set()

    with serving(app) as url:
        client = burst.client_for(url)
        headers, token = burst.signed_in(client, prepared.sessions[0])
        with Session(engine) as session:  # so the report's first commit is its session's last use
            session.execute(
                sa.update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=5))
            )
            session.commit()
        sa.event.listen(Session, "after_commit", lock_after_first_commit)
        answers = []
        sender = threading.Thread(
            target=lambda: answers.append(
                client.post(
                    "/report", data={**burst.report_form(1), "csrf_token": token}, headers=headers
                )
            )
        )
        try:
            sender.start()
            assert locked.wait(10)
            time.sleep(0.3)  # the report is waiting for the lock now
            began = time.monotonic()
            health = httpx.get(f"{url}/healthz", timeout=10)
            waited = time.monotonic() - began
            assert health.status_code == 200 and waited < 1, waited
            assert sender.is_alive()  # still waiting
        finally:
            sa.event.remove(Session, "after_commit", lock_after_first_commit)
            other.execute("ROLLBACK")
            other.close()
            sender.join(timeout=30)
            client.close()
    assert answers and answers[0].status_code == 303, answers
    assert _count(engine, Incident) == 1
    engine.dispose()


def test_a_database_another_process_keeps_locked_is_busy_not_unreachable(tmp_path):
    engine, settings = _haven(tmp_path, write_wait=0.3)
    app = create_app(settings=settings, engine=engine)
    with Session(engine, expire_on_commit=False) as session:
        raw, _ = make_token(session, Scope.incidents_write)
    other = sqlite3.connect(str(tmp_path / "haven.db"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # e.g. a backup or `haven worker`, for longer than Haven waits
    try:
        with TestClient(app, base_url="https://testserver") as client:
            answer = client.post(
                "/api/v1/incidents",
                json=incident_data().model_dump(mode="json"),
                headers=bearer(raw),
            )
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert answer.json()["detail"].startswith("Haven is busy")
    assert "database is locked" not in answer.text
    assert _count(engine, Incident) == 0
    engine.dispose()


def test_writers_have_their_turn_in_the_order_they_came(tmp_path):
    engine, _ = _haven(tmp_path)
    order: list[int] = []
    holder = engine.connect()
    holder.begin()  # the turn is taken: the others queue behind it

    def write(n: int) -> None:
        with engine.begin() as connection:
            order.append(n)
            connection.exec_driver_sql("SELECT 1")

    threads = []
    for n in range(8):
        threads.append(threading.Thread(target=write, args=(n,)))
        threads[-1].start()
        time.sleep(0.05)  # each in the queue before the next comes
    holder.rollback()
    holder.close()
    for thread in threads:
        thread.join(timeout=10)
    assert order == list(range(8))
    engine.dispose()


def test_threads_waiting_for_the_turn_leave_the_holder_a_thread_to_finish_on():
    """More requests wait in threads for the turn than the server has threads: the one holding
    the turn still finds a thread for its next step. Before, it waited for a thread the waiters
    held, and they for it, until they gave up."""
    queue = WriterQueue()
    got: list[bool] = []

    def wait_for_turn() -> None:
        got.append(queue.acquire(5))
        queue.release()

    async def main() -> None:
        to_thread.current_default_thread_limiter().total_tokens = 2
        assert await queue.acquire_async(1)
        async with anyio.create_task_group() as waiting:
            for _ in range(3):
                waiting.start_soon(to_thread.run_sync, wait_for_turn)
            await anyio.sleep(0.3)  # all three wait in threads now
            with anyio.fail_after(2):
                await to_thread.run_sync(lambda: None)  # the holder's next step
            queue.release()

    anyio.run(main)
    assert got == [True, True, True]
