"""Periodic jobs: claimed with one conditional UPDATE, so two workers never run one twice."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, select

from app.audit.anchors import write_anchor
from app.audit.service import SYSTEM
from app.auth import service as auth_service
from app.auth.models import School
from app.checklists import service as checklists_service
from app.core.types import utcnow
from app.incidents import service as incidents_service
from app.jobs.models import JobRun
from app.people import service as people_service
from app.policies import service as policies_service
from app.retention import service as retention_service
from app.webhooks import payloads
from app.webhooks import service as webhooks_service
from app.webhooks.models import EventType

log = logging.getLogger("haven.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Session, int, datetime], int]  # (session, school, now) -> count


def _yearly_checklists(session: Session, school_id: int, now: datetime) -> int:
    return checklists_service.issue_yearly_runs(
        session=session, school_id=school_id, now=now, actor=SYSTEM
    )


def _overdue_checklists(session: Session, school_id: int, now: datetime) -> int:
    """`checklist.overdue`, once per overdue run, to the endpoints that want it."""
    runs = checklists_service.newly_overdue(session=session, school_id=school_id, now=now)
    for run in runs:
        webhooks_service.enqueue(
            session=session,
            school_id=school_id,
            event_type=EventType.checklist_overdue,
            data=payloads.checklist_overdue(run=run),
        )
    return len(runs)


def _policy_reviews(session: Session, school_id: int, now: datetime) -> int:
    """`policy.review_due`, once per version, as its review date comes within 30 days."""
    due = policies_service.newly_due_for_review(session=session, school_id=school_id, now=now)
    for waiting in due:
        webhooks_service.enqueue(
            session=session,
            school_id=school_id,
            event_type=EventType.policy_review_due,
            data=payloads.policy_review_due(policy=waiting.policy, version=waiting.version),
        )
    return len(due)


def _stale_imports(session: Session, school_id: int, now: datetime) -> int:
    return people_service.purge_stale_imports(session=session, now=now, school_id=school_id)


def _retention_review(session: Session, school_id: int, now: datetime) -> int:
    """Count the records past their retention period, for the DSL's home page (never deletes)."""
    return retention_service.refresh_count(session=session, school_id=school_id, now=now)


def _fold_status_changes(session: Session, school_id: int, now: datetime) -> int:
    return incidents_service.fold_status_changes(session=session, school_id=school_id)


JOBS = [
    Job("checklists.yearly", timedelta(days=1), _yearly_checklists),
    Job("checklists.overdue", timedelta(days=1), _overdue_checklists),
    Job("policies.review_due", timedelta(days=1), _policy_reviews),
    Job("people.stale_imports", timedelta(hours=1), _stale_imports),
    Job("retention.review_due", timedelta(days=1), _retention_review),
    Job("incidents.fold_status_changes", timedelta(minutes=1), _fold_status_changes),
]


# Not per school: the audit chain's head, signed, into the anchor log when it has moved.
ANCHOR = "audit.anchor"
ANCHOR_EVERY = timedelta(minutes=5)
# Nor is the sign-in throttle, which is forgotten once its refusals are long over.
THROTTLES = "auth.forget_old_throttles"


def _forget_throttles(now: datetime, session: Session) -> int:
    return auth_service.forget_old_throttles(session=session, now=now)


def _claim(session: Session, name: str, every: timedelta, now: datetime) -> bool:
    if session.get(JobRun, name) is None:
        session.add(JobRun(name=name))
        session.commit()
    claimed = session.execute(
        update(JobRun)
        .where(
            JobRun.name == name,
            or_(JobRun.last_started_at.is_(None), JobRun.last_started_at <= now - every),
        )
        .values(last_started_at=now)
    )
    session.commit()
    return claimed.rowcount == 1


def hold_lease(*, engine: Engine, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew a named lease; False while another holder's lease is still running."""
    now = utcnow()
    with Session(engine) as session:
        if session.get(JobRun, name) is None:
            session.add(JobRun(name=name))
            try:
                session.commit()
            except Exception:  # another worker made the row first
                session.rollback()
        taken = session.execute(
            update(JobRun)
            .where(
                JobRun.name == name,
                or_(
                    JobRun.lease_holder == holder,
                    JobRun.lease_until.is_(None),
                    JobRun.lease_until < now,
                ),
            )
            .values(lease_holder=holder, lease_until=now + ttl)
        )
        session.commit()
        return taken.rowcount == 1


def run_due_jobs(
    *,
    engine: Engine,
    now: datetime | None = None,
    jobs: list[Job] = JOBS,
    evidence_dir: Path | None = None,
) -> dict:
    """Run every job whose interval has passed, once per school, and anchor the audit chain
    in `evidence_dir` when given. Returns what each did."""
    now = now or utcnow()
    done: dict[str, int] = {}
    with Session(engine, expire_on_commit=False) as session:
        school_ids = list(session.exec(select(School.id)).all())
        due = [(job.name, job.every, partial(_each_school, job, school_ids, now)) for job in jobs]
        due.append((THROTTLES, timedelta(hours=1), partial(_forget_throttles, now)))
        if evidence_dir is not None:
            due.append((ANCHOR, ANCHOR_EVERY, partial(_anchor, evidence_dir, now)))
        for name, every, work in due:
            if not _claim(session, name, every, now):
                continue
            try:
                done[name] = work(session)
                session.commit()
                error = ""
            except Exception as exc:  # one failing job must not stop the others
                session.rollback()
                log.exception("job %s failed", name)
                error = type(exc).__name__
            record = session.get(JobRun, name)
            record.last_finished_at = utcnow()
            record.last_error = error
            session.add(record)
            session.commit()
    return done


def _each_school(job: Job, school_ids: list[int], now: datetime, session: Session) -> int:
    return sum(job.run(session, school_id, now) for school_id in school_ids)


def _anchor(evidence_dir: Path, now: datetime, session: Session) -> int:
    anchor = write_anchor(session=session, evidence_dir=evidence_dir, only_if_moved=True, now=now)
    return int(anchor is not None)
