"""Many incident reports at once through the API, and what must hold of them afterwards."""

import threading
from collections.abc import Callable
from datetime import timedelta

import httpx
import sqlalchemy as sa
from sqlmodel import Session, select

from app.audit.models import AuditEvent
from app.audit.service import verify_chain
from app.checklists.models import ChecklistRun
from app.core.types import utcnow
from app.escalation.models import Escalation
from app.incidents.models import Incident, IncidentStatus, TimelineEntry, TimelineKind
from app.webhooks.models import OutboxMessage
from tests.conftest import keyed_engine

CLIENTS = 4


def report(n: int) -> dict:
    """Every other report escalates (a pupil is targeted), and so also writes to the outbox."""
    return {
        "title": f"Report {n}",
        "description": "A post about a member of staff, shared in a year group chat.",
        "occurred_at": (utcnow() - timedelta(hours=1)).isoformat(),
        "platform": "instagram",
        "category": "malicious_post",
        "offender_type": "parent_carer",
        "target_type": "pupil" if n % 2 else "staff",
    }


def send_all(
    base_url: str,
    token: str,
    requests: list[tuple[str, dict]],
    *,
    after: int | None = None,
    fault: Callable[[], None] = lambda: None,
) -> tuple[dict[str, dict], list[str]]:
    """POST each (Idempotency-Key, body) from CLIENTS threads at once, calling `fault` once
    `after` of them have been answered 201, with others in flight; no request is sent after
    that. Returns the 201 bodies by key, and the keys of the requests sent that may not have
    been saved: answered 503, or not answered at all."""
    created: dict[str, dict] = {}
    unsure: list[str] = []
    unexpected: list[str] = []
    lock = threading.Lock()
    queue = iter(requests)
    faulted = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            while not faulted.is_set():
                with lock:
                    key, body = next(queue, (None, None))
                if key is None:
                    return
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
                try:
                    answer = http.post("/api/v1/incidents", json=body, headers=headers)
                except httpx.TransportError:
                    with lock:
                        unsure.append(key)
                    continue
                with lock:
                    if answer.status_code == 201:
                        created[key] = answer.json()
                        if len(created) == after:
                            faulted.set()
                            fault()
                    elif answer.status_code == 503:
                        unsure.append(key)
                    else:
                        unexpected.append(f"{answer.status_code} {answer.text}")

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert unexpected == []
    return created, unsure


def _by_incident(ids) -> dict[int, int]:
    counted: dict[int, int] = {}
    for incident_id in ids:
        counted[int(incident_id)] = counted.get(int(incident_id), 0) + 1
    return counted


def assert_every_incident_is_whole(url: str, created: dict[str, dict]) -> list[Incident]:
    """Every incident answered 201 is there, and every incident there is whole: its audit
    event, its chronology's first entry, its playbook, and when it escalated, its escalation and
    one outbox message. Nothing belongs to an incident that is not there; the audit chain holds."""
    engine = keyed_engine(url)
    with Session(engine) as db:
        incidents = {i.id: i for i in db.exec(select(Incident)).all()}
        for body in created.values():
            assert incidents[body["id"]].reference == body["reference"]
        audited = _by_incident(
            db.exec(
                select(AuditEvent.entity_id).where(
                    AuditEvent.entity_type == "incident", AuditEvent.action == "incident.reported"
                )
            ).all()
        )
        chronology = _by_incident(
            db.exec(
                select(TimelineEntry.incident_id).where(TimelineEntry.kind == TimelineKind.reported)
            ).all()
        )
        playbooks = _by_incident(
            db.exec(
                select(ChecklistRun.incident_id).where(ChecklistRun.incident_id.is_not(None))
            ).all()
        )
        escalations = _by_incident(db.exec(select(Escalation.incident_id)).all())
        outbox = _by_incident(
            message.payload["data"]["incident_id"]
            for message in db.exec(select(OutboxMessage)).all()
        )
        for incident in incidents.values():
            assert audited.get(incident.id) == 1, incident.reference
            assert chronology.get(incident.id) == 1, incident.reference
            assert playbooks.get(incident.id) == 1, incident.reference
            if incident.target_type.value == "pupil":
                assert incident.status == IncidentStatus.escalated, incident.reference
                assert escalations.get(incident.id) == 1, incident.reference
                assert outbox.get(incident.id) == 1, incident.reference
            else:
                assert incident.id not in escalations and incident.id not in outbox
        for counted in (audited, chronology, playbooks, escalations, outbox):
            assert set(counted) <= set(incidents)
        checked, problems = verify_chain(session=db)
        assert problems == [] and checked >= len(incidents)
        assert db.exec(select(sa.func.count()).select_from(Incident)).one() == len(incidents)
    engine.dispose()
    return list(incidents.values())


def assert_resending_makes_one_incident_per_key(
    base_url: str,
    url: str,
    token: str,
    requests: list[tuple[str, dict]],
    created: dict[str, dict],
    unsure: list[str],
    *,
    before: int = 0,
) -> None:
    """Send the unsure requests again with their keys: a key already saved is answered with its
    first result, the others are saved now. Then there is exactly one incident per key sent
    (besides the `before` incidents there were already)."""
    bodies = dict(requests)
    retried, still_unsure = send_all(base_url, token, [(key, bodies[key]) for key in unsure])
    assert still_unsure == []
    assert created.keys().isdisjoint(retried.keys())
    incidents = assert_every_incident_is_whole(url, created | retried)
    assert len(incidents) == before + len(created) + len(unsure)
    assert len({incident.reference for incident in incidents}) == len(incidents)
