"""Periodic jobs: claimed with one conditional UPDATE, so two workers never run one twice."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, select

from app.audit.service import SYSTEM
from app.auth.models import School
from app.checklists import service as checklists_service
from app.core.types import utcnow
from app.jobs.models import JobRun

log = logging.getLogger("haven.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Session, int, datetime], int]  # (session, school_id, now) -> things done


def _yearly_checklists(session: Session, school_id: int, now: datetime) -> int:
    return checklists_service.issue_yearly_runs(
        session=session, school_id=school_id, now=now, actor=SYSTEM
    )


JOBS = [Job("checklists.yearly", timedelta(days=1), _yearly_checklists)]


def _claim(session: Session, job: Job, now: datetime) -> bool:
    if session.get(JobRun, job.name) is None:
        session.add(JobRun(name=job.name))
        session.commit()
    claimed = session.execute(
        update(JobRun)
        .where(
            JobRun.name == job.name,
            or_(JobRun.last_started_at.is_(None), JobRun.last_started_at <= now - job.every),
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
                    JobRun.last_error == holder,
                    JobRun.last_finished_at.is_(None),
                    JobRun.last_finished_at < now,
                ),
            )
            .values(last_error=holder, last_started_at=now, last_finished_at=now + ttl)
        )
        session.commit()
        return taken.rowcount == 1


def run_due_jobs(*, engine: Engine, now: datetime | None = None, jobs: list[Job] = JOBS) -> dict:
    """Run every job whose interval has passed, once per school. Returns what each did."""
    now = now or utcnow()
    done: dict[str, int] = {}
    with Session(engine, expire_on_commit=False) as session:
        school_ids = list(session.exec(select(School.id)).all())
        for job in jobs:
            if not _claim(session, job, now):
                continue
            try:
                done[job.name] = sum(job.run(session, school_id, now) for school_id in school_ids)
                session.commit()
                error = ""
            except Exception as exc:  # one failing job must not stop the others
                session.rollback()
                log.exception("job %s failed", job.name)
                error = type(exc).__name__
            record = session.get(JobRun, job.name)
            record.last_finished_at = utcnow()
            record.last_error = error
            session.add(record)
            session.commit()
    return done
