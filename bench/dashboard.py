"""Time the dashboard and the governors' report with 100,000 incidents.

    .venv/bin/python bench/dashboard.py [--incidents 100000] [--database-url URL]

Without --database-url it measures SQLite (a temporary file) and PostgreSQL at
postgresql+psycopg://postgres@127.0.0.1:5432/postgres (a throwaway database is made there).
Incidents are spread over about three years (one every 15 minutes), each with its chronology
(the report; for most a first action by the DSL some hours later; closing for most), its
playbook run, escalations for about a third, and around them a staff of 60 with their yearly
checklists and a published policy most have acknowledged. Rows are written in bulk
(executemany in one transaction), never one at a time through the ORM. Figures are for the
page through the ASGI app, without the network. Haven draws a chart once for the same figures;
"charts drawn afresh" empties that cache before each request, as a new incident would.
"""

import argparse
import random
import re
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pyotp
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audit.service import SYSTEM, use_chain_key
from app.auth import service as auth_service
from app.auth.models import Role, User, UserCreate
from app.checklists.models import ChecklistRun, ChecklistTemplate
from app.core.config import Settings
from app.core.db import make_engine
from app.core.migrations import upgrade_to_head
from app.core.security import hash_password
from app.core.types import utcnow
from app.dashboard import charts
from app.escalation.models import Escalation, EscalationRule
from app.incidents.library import PLAYBOOK_KEY
from app.incidents.models import Category, Incident, OffenderType, Platform, TimelineEntry
from app.install import ensure_school
from app.main import create_app
from app.policies.models import Policy, PolicyAcknowledgement, PolicyVersion
from bench.databases import database_urls
from bench.incident_queue import PASSWORD, SECRET, sign_in, timed

SPACING = timedelta(minutes=15)
STAFF = 60
BATCH = 10_000


def _entry(incident_id: int, kind: str, text: str, at, actor: int | None = None) -> dict:
    return {
        "incident_id": incident_id,
        "kind": kind,
        "text": text,
        "rationale": "",
        "actor_user_id": actor,
        "created_at": at,
        "detail": {},
    }


def _run(school_id: int, template_id: int, at, **fields) -> dict:
    return {
        "school_id": school_id,
        "template_id": template_id,
        "assignee_id": None,
        "incident_id": None,
        "due_at": None,
        "completed_at": None,
        "created_at": at,
        "updated_at": at,
        **fields,
    }


def _bulk(connection, table, rows: list[dict]) -> None:
    for start in range(0, len(rows), BATCH):
        connection.execute(sa.insert(table), rows[start : start + BATCH])


def _people(engine: sa.Engine) -> tuple[int, int, str, list[int]]:
    """The school, its DSL (with a second factor) and staff accounts, through the services."""
    with Session(engine, expire_on_commit=False) as session:
        school = ensure_school(session=session, settings=Settings(dev=True))
        dsl = auth_service.create_user(
            session=session,
            school_id=school.id,
            actor=SYSTEM,
            data=UserCreate(
                email="dsl@bench.example",
                display_name="Bench DSL",
                role=Role.dsl,
                password=PASSWORD,
            ),
        )
        seed = pyotp.random_base32()
        auth_service.set_totp_seed(user=dsl, seed=seed, secret_key=SECRET)
        dsl.totp_enabled_at = utcnow()
        # Staff accounts share one password hash: argon2 sixty times over would be the slowest
        # part of seeding.
        password_hash = hash_password(PASSWORD)
        staff = [
            User(
                school_id=school.id,
                email=f"staff{n}@bench.example",
                display_name=f"Staff {n}",
                role=Role.staff,
                password_hash=password_hash,
            )
            for n in range(STAFF)
        ]
        session.add_all(staff)
        session.commit()
        return school.id, dsl.id, seed, [u.id for u in staff]


def seed(engine: sa.Engine, count: int) -> tuple[str, str]:
    started = time.perf_counter()
    school_id, dsl_id, secret, staff = _people(engine)
    rng = random.Random(7)
    now = utcnow()
    with Session(engine) as session:
        rules = session.exec(
            select(EscalationRule.id).where(EscalationRule.school_id == school_id)
        ).all()
        templates = dict(
            session.exec(
                select(ChecklistTemplate.key, ChecklistTemplate.id).where(
                    ChecklistTemplate.school_id == school_id
                )
            ).all()
        )
    platforms, categories, offenders = list(Platform), list(Category), list(OffenderType)
    incidents = []
    for n in range(count):
        at = now - SPACING * (n + 1)
        closed = at + timedelta(days=rng.uniform(1, 30)) if rng.random() < 0.7 else None
        closed = closed if closed and closed < now else None
        acted = at + timedelta(hours=rng.uniform(0.2, 72))
        acted = acted if rng.random() < 0.9 and acted < now else None
        incidents.append(
            {
                "school_id": school_id,
                "reference": f"INC-B-{n:07d}",
                "title": f"Bench incident {n}",
                "description": "Seeded for the benchmark.",
                "occurred_at": at - timedelta(hours=2),
                "reported_at": at,
                "reported_by_id": rng.choice(staff),
                "platform": rng.choice(platforms).value,
                "category": rng.choice(categories).value,
                "offender_type": rng.choice(offenders).value,
                "target_type": "staff",
                "content_flags": [],
                "suspected_criminal_offence": False,
                "removal_requested": False,
                "removal_refused": False,
                "status": "closed" if closed else rng.choice(["open", "in_progress", "escalated"]),
                "severity": rng.choice(["low", "low", "medium", "high", "critical"]),
                "outcome": "Resolved." if closed else "",
                "closed_at": closed,
                "first_action_at": acted,
                "created_at": at,
                "updated_at": closed or at,
            }
        )
    with engine.begin() as connection:
        _bulk(connection, Incident, incidents)
        ids = connection.execute(
            sa.select(
                Incident.id, Incident.reported_at, Incident.closed_at, Incident.first_action_at
            ).where(Incident.school_id == school_id)
        ).all()
        entries, escalations, runs = [], [], []
        for incident_id, reported, closed, acted in ids:
            entries.append(_entry(incident_id, "reported", "Reported.", reported))
            fired = rng.sample(rules, rng.choice([0, 0, 1, 1, 2])) if rng.random() < 0.5 else []
            for rule_id in fired:
                escalations.append(
                    {
                        "incident_id": incident_id,
                        "rule_id": rule_id,
                        "created_at": reported,
                        "reason": "Seeded.",
                    }
                )
                entries.append(_entry(incident_id, "escalation", "Escalated.", reported))
            if acted is not None:
                kind = rng.choice(["note", "assignment", "status_change", "playbook_step"])
                entries.append(_entry(incident_id, kind, "Seeded action.", acted, dsl_id))
                later = acted + timedelta(hours=3)
                entries.append(_entry(incident_id, "note", "Follow-up.", later, dsl_id))
            if closed:
                entries.append(_entry(incident_id, "status_change", "Closed.", closed, dsl_id))
            runs.append(
                _run(
                    school_id,
                    templates[PLAYBOOK_KEY],
                    reported,
                    incident_id=incident_id,
                    reason="incident",
                )
            )
        # Each member of staff: the conduct checklist every September, and one other.
        years = sorted({(now - SPACING * count).year + k for k in range(5)})
        others = [key for key in templates if key not in (PLAYBOOK_KEY, "staff-conduct")]
        for user_id in staff:
            for year in years:
                given = now.replace(year=year, month=9, day=3)
                if given > now:
                    continue
                for key in ("staff-conduct", rng.choice(others)):
                    done = given + timedelta(days=rng.uniform(1, 40))
                    runs.append(
                        _run(
                            school_id,
                            templates[key],
                            given,
                            assignee_id=user_id,
                            reason="yearly",
                            due_at=given + timedelta(days=30),
                            completed_at=done if rng.random() < 0.85 and done < now else None,
                        )
                    )
        _bulk(connection, TimelineEntry, entries)
        _bulk(connection, Escalation, escalations)
        _bulk(connection, ChecklistRun, runs)
        policy_id = connection.execute(
            sa.insert(Policy).returning(Policy.id),
            {
                "school_id": school_id,
                "title": "Social media",
                "kind": "social_media",
                "audience": "staff",
                "created_at": now,
                "updated_at": now,
            },
        ).scalar_one()
        version_id = connection.execute(
            sa.insert(PolicyVersion).returning(PolicyVersion.id),
            {
                "policy_id": policy_id,
                "number": 1,
                "body": "# Social media",
                "status": "published",
                "effective_from": date(now.year - 1, 9, 1),
                "review_due": (now + timedelta(days=20)).date(),
                "created_at": now,
                "published_at": now,
            },
        ).scalar_one()
        _bulk(
            connection,
            PolicyAcknowledgement,
            [
                {"version_id": version_id, "user_id": u, "acknowledged_at": now}
                for u in staff
                if rng.random() < 0.8
            ],
        )
        connection.exec_driver_sql("ANALYZE")
    print(
        f"seeded {count} incidents, {len(entries)} chronology entries, {len(escalations)} "
        f"escalations, {len(runs)} checklist runs in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    return "dsl@bench.example", secret


def timed_fresh(client: TestClient, path: str, repeat: int) -> tuple[float, float]:
    """As `timed`, but every chart drawn afresh (as after a new incident), not from the cache."""
    samples = []
    for _ in range(repeat):
        charts.forget_drawn()
        start = time.perf_counter()
        assert client.get(path).status_code == 200
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), sorted(samples)[int(len(samples) * 0.95) - 1]


def measure(url: str, count: int, repeat: int) -> list[tuple]:
    engine = use_chain_key(make_engine(url), SECRET)
    upgrade_to_head(engine)
    email, secret = seed(engine, count)
    settings = Settings(
        dev=True, secret_key=SECRET, database_url=url, worker="off", log_level="warning"
    )
    app = create_app(settings, engine)
    today = utcnow().date()
    three_years = f"from={(today - timedelta(days=3 * 365)).isoformat()}&to={today.isoformat()}"
    results = []
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, email, secret)
        fresh = timed_fresh(client, "/dashboard", repeat)
        results.append((engine.dialect.name, "/dashboard (charts drawn afresh)", *fresh))
        for path in [
            "/dashboard",
            f"/dashboard?from={(today - timedelta(weeks=12)).isoformat()}&to={today.isoformat()}",
            f"/dashboard?{three_years}",
            "/dashboard/governors-report",
            f"/dashboard/incidents-by-platform.csv?{three_years}",
            "/healthz",
        ]:
            results.append((engine.dialect.name, path, *timed(client, path, repeat)))
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    results = []
    for url in database_urls(args.database_url):
        results += measure(url, args.incidents, args.repeat)
    print(f"{args.incidents} incidents, {args.repeat} requests each")
    print(f"{'database':<12}{'page':<62}{'median ms':>10}{'p95 ms':>10}")
    for database, path, median, p95 in results:
        shown = re.sub(r"\d{4}-\d{2}-\d{2}", "…", path)
        print(f"{database:<12}{shown:<62}{median:>10.1f}{p95:>10.1f}")


if __name__ == "__main__":
    main()
