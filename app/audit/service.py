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
    seq, prev_hash = _chain_end(session)
    event = AuditEvent(
        seq=seq + 1,
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
        prev_hash=prev_hash,
    )
    event.hash = _event_hash(event)
    session.add(event)
    session.flush()
    session.info[_CHAIN_END] = (session.get_transaction(), event.seq, event.hash)
    return event


_CHAIN_END = "audit_chain_end"


def _chain_end(session: Session) -> tuple[int, str]:
    """The last event's seq and hash, with the chain held for the rest of the transaction: by an
    advisory lock on PostgreSQL, by the write lock every SQLite transaction takes at its start.
    Held, the chain cannot move, so later events of the same transaction need not look again."""
    transaction = session.get_transaction()
    known = session.info.get(_CHAIN_END)
    if known is not None and transaction is not None and known[0] is transaction:
        return known[1], known[2]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK_KEY})
    last = session.exec(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (last[0], last[1]) if last else (0, GENESIS_HASH)


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
