"""The anchor log: the chain's signed head, kept outside the database in the evidence volume.

One JSON line per anchor: the sequence number and hash of the newest event, when it was seen,
and an HMAC over them with a key derived from HAVEN_SECRET_KEY. Lines are only ever appended.
Someone who deletes the newest events, or rewrites the chain, from inside the database cannot
change what the log already vouches for, and cannot forge a line without the key.
"""

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from app.audit.service import chain_head, chain_key, hashes_at
from app.core.keys import AUDIT_ANCHOR, keyed_hash
from app.core.types import utcnow

TAIL_BYTES = 4096  # more than one line: where the last anchor is found


def anchor_log_path(evidence_dir: Path) -> Path:
    """Where the anchor log lives (backups copy it, and a restore puts it back)."""
    return Path(evidence_dir) / "audit" / "anchors.log"


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: datetime

    @property
    def when(self) -> str:
        return self.at.strftime("%d %b %Y %H:%M UTC")

    def _signed_part(self) -> dict:
        return {"seq": self.seq, "hash": self.hash, "at": self.at.isoformat()}

    def signature(self, secret_key: str) -> str:
        message = json.dumps(self._signed_part(), sort_keys=True, separators=(",", ":"))
        return keyed_hash(secret_key, AUDIT_ANCHOR, message.encode())

    def line(self, secret_key: str) -> str:
        return json.dumps({**self._signed_part(), "sig": self.signature(secret_key)}) + "\n"


def _parse(line: str) -> tuple[Anchor, str]:
    """The anchor on a line and the signature it carries; ValueError if it is not one."""
    try:
        fields = json.loads(line)
        anchor = Anchor(
            seq=int(fields["seq"]),
            hash=str(fields["hash"]),
            at=datetime.fromisoformat(fields["at"]),
        )
        return anchor, str(fields["sig"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("not an anchor") from exc


def read_anchors(path: Path, secret_key: str) -> tuple[list[Anchor], list[str]]:
    """The anchors whose signatures hold under `secret_key`, and a problem for every other line."""
    anchors: list[Anchor] = []
    problems: list[str] = []
    if not path.exists():
        return anchors, problems
    with path.open(encoding="utf-8", errors="replace") as log:
        for number, line in enumerate(log, start=1):
            try:
                anchor, signature = _parse(line)
            except ValueError:
                problems.append(f"line {number} of the anchor log is not an anchor")
                continue
            if anchor.signature(secret_key) != signature:
                problems.append(
                    f"line {number} of the anchor log (event {anchor.seq}, {anchor.when}) "
                    "has no valid signature: it was edited, or not written with this "
                    "HAVEN_SECRET_KEY"
                )
                continue
            anchors.append(anchor)
    return anchors, problems


def last_anchor(path: Path) -> Anchor | None:
    """The anchor on the log's last line, read from its end (the log only grows)."""
    if not path.exists():
        return None
    with path.open("rb") as log:
        log.seek(max(0, path.stat().st_size - TAIL_BYTES))
        lines = log.read().decode("utf-8", errors="replace").splitlines()
    try:
        return _parse(lines[-1])[0] if lines else None
    except ValueError:
        return None


def append_line(path: Path, line: str) -> None:
    """Append one line durably: O_APPEND, fsync, readable by Haven's user only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    created = not path.exists()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if created:  # the new name must survive a crash too
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def write_anchor(
    *,
    session: Session,
    evidence_dir: Path,
    only_if_moved: bool = False,
    now: datetime | None = None,
) -> Anchor | None:
    """Append the chain's head, signed, to the anchor log. With `only_if_moved`, nothing is
    written when the head is the one the last anchor holds. None when nothing was written."""
    secret_key = chain_key(session)
    head = chain_head(session=session)
    if head is None:
        return None
    path = anchor_log_path(evidence_dir)
    last = last_anchor(path)
    if only_if_moved and last is not None and (last.seq, last.hash) == head:
        return None
    anchor = Anchor(seq=head[0], hash=head[1], at=(now or utcnow()).replace(microsecond=0))
    append_line(path, anchor.line(secret_key))
    return anchor


def check_anchors(
    *, session: Session, evidence_dir: Path, secret_key: str | None = None
) -> tuple[int, list[str]]:
    """Check every anchor in the log against the chain: how many anchors held, and what is
    wrong (forged or edited lines, events missing after an anchor, rewritten events)."""
    secret_key = secret_key or chain_key(session)
    anchors, problems = read_anchors(anchor_log_path(evidence_dir), secret_key)
    head = chain_head(session=session)
    end = head[0] if head else 0
    beyond = [anchor for anchor in anchors if anchor.seq > end]
    if beyond:
        latest = max(beyond, key=lambda anchor: anchor.seq)
        chain = f"the chain ends at event {end}" if end else "the chain is empty"
        problems.append(
            f"{chain} but the anchor of {latest.when} says {latest.seq}: "
            f"events {end + 1}..{latest.seq} are missing"
        )
    within = [anchor for anchor in anchors if anchor.seq <= end]
    stored = hashes_at(session=session, seqs={anchor.seq for anchor in within})
    for anchor in within:
        if anchor.seq not in stored:
            problems.append(f"event {anchor.seq}, anchored on {anchor.when}, is missing")
        elif stored[anchor.seq] != anchor.hash:
            problems.append(
                f"event {anchor.seq} differs from the anchor of {anchor.when}: it, or an "
                "event before it, was changed"
            )
    return len(anchors), problems


def resign_log(
    *, evidence_dir: Path, old_secret_key: str, new_secret_key: str, new_hashes: dict[int, str]
) -> Path | None:
    """Write the anchor log again beside itself, each anchor holding its event's new hash and
    signed with the new key; `install_resigned` puts it in place once the chain is committed.
    None when there is no log. ValueError if a line does not hold under the old key."""
    path = anchor_log_path(evidence_dir)
    anchors, problems = read_anchors(path, old_secret_key)
    if problems:
        raise ValueError(problems[0])
    if not path.exists():
        return None
    staged = path.with_name(path.name + ".new")
    staged.unlink(missing_ok=True)
    lines = [
        Anchor(seq=a.seq, hash=new_hashes[a.seq], at=a.at).line(new_secret_key) for a in anchors
    ]
    append_line(staged, "".join(lines))
    return staged


def install_resigned(staged: Path, *, now: datetime | None = None) -> Path:
    """Put a re-signed log in place; the old one is kept beside it, renamed. Returns its name."""
    path = staged.with_name(staged.name.removesuffix(".new"))
    kept = path.with_name(f"{path.name}.before-{(now or utcnow()):%Y%m%dT%H%M%SZ}")
    os.replace(path, kept)
    os.replace(staged, path)
    return kept
