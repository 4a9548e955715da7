"""Writing and verifying the audit trail. Every domain records through `record_event`.

Each event's hash is an HMAC keyed with a key derived from HAVEN_SECRET_KEY, over the event and
the hash of the one before it: someone with only the database can neither edit an event nor
recompute the chain after it. The engine carries the key (`use_chain_key`); a commit with events
through an engine without one is refused.
"""

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, text, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from app.audit.models import AuditEvent
from app.core.errors import Conflict
from app.core.keys import AUDIT_CHAIN, keyed_hash
from app.core.types import utcnow

GENESIS_HASH = "0" * 64
CHAIN_KEY_OPTION = "haven_audit_chain_key"  # the engine's execution option holding the key


class UnkeyedChain(RuntimeError):
    """Events were to be committed through an engine that was not given the secret key."""


class ChainBroken(Conflict):
    """The chain does not verify, so it may not be re-keyed."""


def use_chain_key(engine: Engine, secret_key: str) -> Engine:
    """Key the chain of every event committed through `engine` with `secret_key`
    (HAVEN_SECRET_KEY). Whatever makes an engine from the settings calls this once."""
    engine.update_execution_options(**{CHAIN_KEY_OPTION: secret_key})
    return engine


def chain_key(bind: Session | Engine | Connection) -> str:
    """The key events are chained with through this session's engine (or this engine);
    UnkeyedChain if it has none."""
    if isinstance(bind, Session):
        bind = bind.get_bind()
    key = bind.get_execution_options().get(CHAIN_KEY_OPTION)
    if not key:
        raise UnkeyedChain(
            "audit events cannot be chained: the database engine was not given "
            "HAVEN_SECRET_KEY (app.audit.service.use_chain_key)"
        )
    return key


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in user, an API token, or the system itself."""

    user_id: int | None = None
    token_id: int | None = None
    request_id: str = ""
    ip_address: str = ""


SYSTEM = Actor()


def _canonical(event: AuditEvent) -> bytes:
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
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()


def event_hash(event: AuditEvent, secret_key: str) -> str:
    """The event's place in the chain: HMAC-SHA256 of it (with the hash before it) under the
    audit chain's key."""
    return keyed_hash(secret_key, AUDIT_CHAIN, _canonical(event))


def _unkeyed_hash(event: AuditEvent) -> str:
    """What someone without the key would compute: how a recomputed chain is recognised."""
    return hashlib.sha256(_canonical(event)).hexdigest()


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
    secret_key = chain_key(session)
    _hold_chain(session)
    seq, prev_hash = chain_head(session=session) or (0, GENESIS_HASH)
    for _, entry in pending:
        seq += 1
        entry.seq, entry.prev_hash = seq, prev_hash
        entry.hash = prev_hash = event_hash(entry, secret_key)
        session.add(entry)


def _hold_chain(session: Session) -> None:
    """Until the transaction ends, nobody else appends to the chain (on SQLite every writing
    transaction holds the write lock from its start anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK_KEY})


def chain_head(*, session: Session) -> tuple[int, str] | None:
    """(seq, hash) of the newest event, or None while the chain is empty."""
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (last[0], last[1]) if last else None


def hashes_at(*, session: Session, seqs: set[int]) -> dict[int, str]:
    """The hash of each event at these places in the chain that exists."""
    wanted, found = sorted(seqs), {}
    for start in range(0, len(wanted), 1000):  # within every database's limit on parameters
        rows = session.execute(
            select(AuditEvent.seq, AuditEvent.hash).where(
                AuditEvent.seq.in_(wanted[start : start + 1000])
            )
        )
        found.update(rows.all())
    return found


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


def _walk(session: Session, batch_size: int) -> Iterator[AuditEvent]:
    """Every event, in chain order, a batch at a time."""
    after = 0
    while True:
        batch = session.exec(
            select(AuditEvent)
            .where(AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
            .limit(batch_size)
        ).all()
        if not batch:
            return
        yield from batch
        after = batch[-1].seq


def verify_chain(
    *, session: Session, secret_key: str | None = None, batch_size: int = 1000
) -> tuple[int, list[ChainProblem]]:
    """Walk the whole chain under `secret_key` (by default the one the session's engine chains
    with); return how many events were checked and what is wrong."""
    secret_key = secret_key or chain_key(session)
    problems: list[ChainProblem] = []
    expected_seq, expected_prev, checked = 1, GENESIS_HASH, 0
    for event in _walk(session, batch_size):
        if event.seq != expected_seq:
            problems.append(
                ChainProblem(expected_seq, f"events {expected_seq}..{event.seq - 1} are missing")
            )
        if event.prev_hash != expected_prev:
            problems.append(ChainProblem(event.seq, "does not follow the event before it"))
        if event_hash(event, secret_key) != event.hash:
            problems.append(
                ChainProblem(
                    event.seq,
                    "was rewritten without the key (its hash is a plain SHA-256)"
                    if _unkeyed_hash(event) == event.hash
                    else "was changed after it was written",
                )
            )
        expected_seq, expected_prev = event.seq + 1, event.hash
        checked += 1
    return checked, problems


def rekey_chain(
    *, session: Session, old_secret_key: str, new_secret_key: str, batch_size: int = 1000
) -> dict[int, str]:
    """Check the chain under the old key, then hash it again under the new one, in the caller's
    transaction. ChainBroken, changing nothing, if it does not verify under the old key.
    Returns each event's new hash by its place in the chain."""
    _hold_chain(session)
    _, problems = verify_chain(session=session, secret_key=old_secret_key, batch_size=batch_size)
    if problems:
        first = problems[0]
        raise ChainBroken(
            f"the audit trail does not verify under the old key (event {first.seq} "
            f"{first.reason}; {len(problems)} problem(s) in all): is it the key Haven ran with?"
        )
    new_hashes: dict[int, str] = {}
    prev_hash, rows = GENESIS_HASH, []
    with _updates_allowed(session):
        for event in _walk(session, batch_size):
            rekeyed = SimpleNamespace(**{**event.model_dump(), "prev_hash": prev_hash})
            rows.append({"id": event.id, "prev_hash": prev_hash})
            prev_hash = rows[-1]["hash"] = new_hashes[event.seq] = event_hash(
                rekeyed, new_secret_key
            )
            if len(rows) == batch_size:
                session.execute(update(AuditEvent), rows)
                rows = []
        if rows:
            session.execute(update(AuditEvent), rows)
    session.expire_all()
    return new_hashes


@contextmanager
def _updates_allowed(session: Session) -> Iterator[None]:
    """Lift the trigger that refuses UPDATE of audit events, inside the caller's transaction,
    and put it back (a failure rolls both back with the rest)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
        yield
        session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
        return
    (trigger,) = session.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :name"),
        {"name": "audit_event_no_update"},
    ).one()
    session.execute(text("DROP TRIGGER audit_event_no_update"))
    yield
    session.execute(text(trigger))
