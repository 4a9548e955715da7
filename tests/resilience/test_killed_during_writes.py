"""Haven is killed (SIGKILL) while incidents are being reported through the API, and restarted.

Several clients report incidents at once, each request with its own Idempotency-Key, as the MIS
does; after a set number of 201 answers the process is killed with requests still in flight.
Which of those were committed is up to chance, so the test checks what must hold whatever the
timing (tests/resilience/reports.py): every incident answered 201 is there, every incident there
is whole, the audit chain holds, and sending the unanswered requests again with the same keys
after the restart leaves exactly one incident per key. Runs on SQLite and on PostgreSQL (a
database made for the test on the suite's server), with HAVEN_WORKER=off so that the outbox
messages stay as the requests wrote them.
"""

import uuid

from sqlmodel import Session

from app.audit.service import SYSTEM
from app.auth.models import Scope
from app.core.migrations import upgrade_to_head
from app.webhooks import service as webhooks_service
from app.webhooks.models import EndpointIn
from tests.conftest import keyed_engine
from tests.factories import make_token, make_user
from tests.resilience.reports import (
    CLIENTS,
    assert_every_incident_is_whole,
    assert_resending_makes_one_incident_per_key,
    report,
    send_all,
)

REQUESTS = CLIENTS * 8
KILL_AFTER = 10  # 201 answers; the other clients have requests in flight (some, mid-write)


def test_incidents_are_whole_or_absent_after_haven_is_killed(scratch_database, haven_process):
    url = scratch_database()
    engine = keyed_engine(url)
    upgrade_to_head(engine)
    with Session(engine, expire_on_commit=False) as db:
        school_id = make_user(db).school_id
        token, _ = make_token(db, Scope.incidents_write, Scope.incidents_read)
        webhooks_service.create_endpoint(
            session=db,
            school_id=school_id,
            data=EndpointIn(
                url="https://relay.school.example/haven",
                events=["incident.escalated"],
                format="standard",
            ),
            actor=SYSTEM,
            check_url=lambda url: None,  # no look-up of the made-up host
        )
        db.commit()
    engine.dispose()

    haven = haven_process(database_url=url, worker="off", api_rate_limit="100000/minute")
    requests = [(str(uuid.uuid4()), report(n)) for n in range(REQUESTS)]
    created, unsure = send_all(
        haven.start().url, token, requests, after=KILL_AFTER, fault=haven.kill
    )
    assert haven.process.returncode == -9 and len(created) >= KILL_AFTER
    assert_every_incident_is_whole(url, created)

    haven.start()
    assert_resending_makes_one_incident_per_key(haven.url, url, token, requests, created, unsure)
