"""Writing and verifying the audit trail. Every domain records through `record_event`."""

import hashlib
import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from app.audit.models import AuditEvent
from app.core.types import utcnow

GENESIS_HASH = "0" * 64


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
    """Append one event in the caller's transaction. `detail` holds metadata, never content.
    The event joins the chain when the transaction commits (see `_chain_pending`)."""
    entry = AuditEvent(
        seq=0,
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
        prev_hash="",
        hash="",
    )
    if not session.in_transaction():
        session.begin()
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((transaction, entry))
    return entry


_PENDING = "audit_pending"
_CHAIN_LOCK_KEY = 0x4A5645  # advisory lock id serialising appends on PostgreSQL


@sa.event.listens_for(OrmSession, "before_commit")
def _chain_pending(session: OrmSession) -> None:
    """Give the transaction's events their places in the chain as it commits. The chain is held
    from here to the commit only (an advisory lock on PostgreSQL; on SQLite the write lock every
    transaction takes at its start), so concurrent writers wait for each other briefly."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK_KEY})
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
    for _, entry in pending:
        seq += 1
        entry.seq, entry.prev_hash = seq, prev_hash
        entry.hash = prev_hash = _event_hash(entry)
        session.add(entry)


@sa.event.listens_for(OrmSession, "after_transaction_end")
def _forget_rolled_back(session: OrmSession, transaction) -> None:
    """A transaction (or savepoint) that ends with events still pending rolled back: a committed
    one took them all in `_chain_pending`."""
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [(t, entry) for t, entry in pending if t is not transaction]


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
