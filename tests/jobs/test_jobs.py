"""Periodic jobs run once per interval across workers, and a failing job is recorded."""

import threading
from datetime import timedelta

from sqlmodel import Session, select

from app.checklists.models import ChecklistRun, RunReason
from app.core.types import utcnow
from app.jobs.models import JobRun
from app.jobs.service import JOBS, Job, run_due_jobs
from app.worker import run_worker
from tests.factories import give_checklist, make_endpoint, make_user


def test_yearly_checklists_are_issued_once_a_day_at_most(committed_engine):
    with Session(committed_engine, expire_on_commit=False) as session:
        user = make_user(session)
        run = give_checklist(session, user)
        run.created_at = utcnow() - timedelta(days=400)
        run.completed_at = utcnow() - timedelta(days=390)
        session.add(run)
        session.commit()
    now = utcnow()
    assert run_due_jobs(engine=committed_engine, now=now)["checklists.yearly"] == 1
    # A second worker, or the next round, finds the job already done for today.
    assert "checklists.yearly" not in run_due_jobs(
        engine=committed_engine, now=now + timedelta(hours=1)
    )
    assert (
        run_due_jobs(engine=committed_engine, now=now + timedelta(days=1))["checklists.yearly"] == 0
    )
    with Session(committed_engine) as session:
        reasons = sorted(r.reason for r in session.exec(select(ChecklistRun)).all())
    assert reasons == [RunReason.assigned, RunReason.yearly]


def test_a_failing_job_is_recorded_and_does_not_stop_the_others(committed_engine):
    def broken(session, school_id, now):
        raise RuntimeError("boom")

    jobs = [Job("test.broken", timedelta(days=1), broken), *JOBS]
    with Session(committed_engine) as session:
        make_user(session)
    done = run_due_jobs(engine=committed_engine, jobs=jobs)
    assert "checklists.yearly" in done and "test.broken" not in done
    with Session(committed_engine) as session:
        record = session.get(JobRun, "test.broken")
    assert record.last_error == "RuntimeError" and record.last_finished_at is not None


def test_the_worker_loop_runs_jobs_and_stops_when_asked(committed_engine):
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(committed_engine, stop, None, 0.05))
    thread.start()
    try:
        for _ in range(100):
            with Session(committed_engine) as session:
                if session.get(JobRun, "checklists.yearly"):
                    break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    with Session(committed_engine) as session:
        assert session.get(JobRun, "checklists.yearly").last_finished_at is not None


def test_overdue_checklists_are_announced_once(committed_engine):
    from app.webhooks import service as webhooks_service
    from app.webhooks.models import EventType, OutboxMessage

    with Session(committed_engine, expire_on_commit=False) as session:
        user = make_user(session)
        run = give_checklist(session, user, due_at=utcnow() + timedelta(days=1))
        make_endpoint(session, "https://hooks.example.org/", events=["checklist.overdue"])
    later = utcnow() + timedelta(days=2)
    assert run_due_jobs(engine=committed_engine, now=later)["checklists.overdue"] == 1
    assert (
        run_due_jobs(engine=committed_engine, now=later + timedelta(days=1))["checklists.overdue"]
        == 0
    )
    with Session(committed_engine) as session:
        (message,) = session.exec(select(OutboxMessage)).all()
        sent = webhooks_service.prepare(
            session=session, message_id=message.id, now=later, base_url="https://haven.test"
        )
    assert message.event_type == EventType.checklist_overdue
    assert sent.event["data"]["url"] == f"https://haven.test/checklists/runs/{run.id}"


def test_roster_previews_never_applied_are_deleted_after_a_day(committed_engine):
    from app.people.models import RosterImport, RosterImportStatus

    with Session(committed_engine, expire_on_commit=False) as session:
        admin = make_user(session)
        for age, status in [
            (timedelta(hours=30), RosterImportStatus.previewed),
            (timedelta(hours=2), RosterImportStatus.previewed),
            (timedelta(hours=30), RosterImportStatus.applied),
        ]:
            session.add(
                RosterImport(
                    school_id=admin.school_id,
                    created_by_id=admin.id,
                    created_at=utcnow() - age,
                    status=status,
                    people=[{"external_id": "1"}] if status == "previewed" else [],
                )
            )
        session.commit()
    assert run_due_jobs(engine=committed_engine)["people.stale_imports"] == 1
    with Session(committed_engine) as session:
        kept = session.exec(select(RosterImport.status)).all()
    assert sorted(kept) == ["applied", "previewed"]


def test_sign_in_failures_are_forgotten_once_their_refusal_is_long_over(committed_engine):
    from app.auth.models import SignInThrottle, ThrottleKind

    now = utcnow()
    with Session(committed_engine) as session:
        for key, last, blocked in [
            ("old", now - timedelta(days=3), None),
            ("old-blocked", now - timedelta(days=3), now - timedelta(days=3)),
            ("recent", now - timedelta(hours=1), None),
            ("still-refused", now - timedelta(days=3), now + timedelta(minutes=5)),
        ]:
            session.add(
                SignInThrottle(
                    key=key,
                    kind=ThrottleKind.account,
                    failures=1,
                    last_failure_at=last,
                    blocked_until=blocked,
                )
            )
        session.commit()
    assert run_due_jobs(engine=committed_engine, now=now)["auth.forget_old_throttles"] == 2
    with Session(committed_engine) as session:
        kept = sorted(session.exec(select(SignInThrottle.key)).all())
    assert kept == ["recent", "still-refused"]


def test_a_lease_is_held_by_one_holder_until_it_runs_out(committed_engine):
    from app.jobs.service import hold_lease

    def take(holder, ttl=timedelta(seconds=30)):
        return hold_lease(engine=committed_engine, name="lease:test", holder=holder, ttl=ttl)

    assert take("a") and take("a")  # taken, then renewed
    assert not take("b")
    with Session(committed_engine) as session:
        record = session.get(JobRun, "lease:test")
    assert record.lease_holder == "a" and record.last_error == ""
    assert take("a", ttl=timedelta(seconds=-1))  # a lease that has run out
    assert take("b")
