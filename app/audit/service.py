"""Writing and verifying the audit trail. Every domain records through `record_event`."""

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session, select

from app.audit.models import AuditEvent
from app.core.types import utcnow

GENESIS_HASH = "0" * 64
_CHAIN_LOCK_KEY = 0x4A5645  # advisory lock id serialising appends on PostgreSQL


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in user, an API token, or the system itself."""

    user_id: int | None = None
    token_id: int | None = None
    request_id: str = ""
    ip_address: str = ""


SYSTEM = Actor()


def _event_hash(event: AuditEvent) -> str:
    fields = {
        "seq": event.seq,
        "school_id": event.school_id,
        "occurred_at": event.occurred_at.isoformat(),
        "actor_user_id": event.actor_user_id,
        "actor_token_id": event.actor_token_id,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "request_id": event.request_id,
        "ip_address": event.ip_address,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_event(
    *,
    session: Session,
    actor: Actor,
    action: str,
    school_id: int | None,
    entity_type: str = "",
    entity_id: int | str = "",
    detail: dict | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction. `detail` holds metadata, never content."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK_KEY})
    last = session.exec(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).first()
    event = AuditEvent(
        seq=(last.seq + 1) if last else 1,
        school_id=school_id,
        occurred_at=utcnow().replace(microsecond=0),
        actor_user_id=actor.user_id,
        actor_token_id=actor.token_id,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        request_id=actor.request_id,
        ip_address=actor.ip_address,
        detail=detail or {},
        prev_hash=last.hash if last else GENESIS_HASH,
    )
    event.hash = _event_hash(event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    reason: str


def verify_chain(*, session: Session, batch_size: int = 1000) -> tuple[int, list[ChainProblem]]:
    """Walk the whole chain; return how many events were checked and what is wrong."""
    problems: list[ChainProblem] = []
    expected_seq, expected_prev, checked = 1, GENESIS_HASH, 0
    after = 0
    while True:
        batch = session.exec(
            select(AuditEvent)
            .where(AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
            .limit(batch_size)
        ).all()
        if not batch:
            break
        for event in batch:
            if event.seq != expected_seq:
                problems.append(
                    ChainProblem(
                        expected_seq, f"events {expected_seq}..{event.seq - 1} are missing"
                    )
                )
            if event.prev_hash != expected_prev:
                problems.append(ChainProblem(event.seq, "does not follow the event before it"))
            if _event_hash(event) != event.hash:
                problems.append(ChainProblem(event.seq, "was changed after it was written"))
            expected_seq, expected_prev = event.seq + 1, event.hash
            checked += 1
        after = batch[-1].seq
    return checked, problems
