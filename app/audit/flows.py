"""Changing HAVEN_SECRET_KEY: everything keyed or sealed with it is redone under the new key."""

from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from app.audit import anchors
from app.audit.service import SYSTEM, ChainBroken, record_event, rekey_chain
from app.auth import service as auth_service
from app.core.errors import InvalidInput
from app.core.keys import SealedValueError


@dataclass(frozen=True)
class Rotation:
    events: int
    seeds: int
    staged_log: Path | None  # the re-signed anchor log, to install once committed


def rotate_secret_key(
    *, session: Session, evidence_dir: Path, old_secret_key: str, new_secret_key: str
) -> Rotation:
    """In the caller's transaction: check the chain and the anchor log under the old key, re-key
    the chain, re-seal the TOTP seeds and record it. The re-signed anchor log is written beside
    the old one. ChainBroken, with nothing changed, if anything does not hold under the old key.
    The session's engine must chain with the new key (the event recorded here is keyed so)."""
    if old_secret_key == new_secret_key:
        raise InvalidInput("the old key is the key configured now: configure the new one first")
    _, problems = anchors.check_anchors(  # before the hashes it compares change
        session=session, evidence_dir=evidence_dir, secret_key=old_secret_key
    )
    new_hashes = rekey_chain(  # says first if the chain does not hold: a wrong key, most likely
        session=session, old_secret_key=old_secret_key, new_secret_key=new_secret_key
    )
    if problems:
        raise ChainBroken(f"the anchor log does not hold under the old key: {problems[0]}")
    try:
        seeds = auth_service.reseal_totp_seeds(
            session=session, old_secret_key=old_secret_key, new_secret_key=new_secret_key
        )
    except SealedValueError as exc:
        raise ChainBroken(f"{exc}: is it the old key?") from None
    staged = anchors.resign_log(
        evidence_dir=evidence_dir,
        old_secret_key=old_secret_key,
        new_secret_key=new_secret_key,
        new_hashes=new_hashes,
    )
    record_event(
        session=session,
        actor=SYSTEM,
        action="secret_key.rotated",
        school_id=None,
        detail={"events": len(new_hashes), "seeds": seeds},
    )
    return Rotation(events=len(new_hashes), seeds=seeds, staged_log=staged)
