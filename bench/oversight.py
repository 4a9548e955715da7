"""Time the checklist oversight and staff checklist pages with 300 staff x 5 runs each.

    .venv/bin/python bench/oversight.py [--database-url URL] [--staff 300] [--runs 5]

Without --database-url it measures SQLite (a temporary file) and PostgreSQL at
postgresql+psycopg://postgres@127.0.0.1:5432/postgres (a throwaway database is made there).
Figures are for the page as a browser gets it through the ASGI app, without the network.
"""

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audit.service import use_chain_key
from app.auth.models import Role, User
from app.checklists.models import ChecklistItem, ChecklistRun, ItemCompletion
from app.core.config import Settings
from app.core.db import make_engine
from app.core.migrations import upgrade_to_head
from app.core.security import hash_password
from app.core.types import utcnow
from app.install import ensure_school
from app.main import create_app
from bench.databases import database_urls

PASSWORD = "bench-password-123"
SECRET = "bench-secret-key-0123456789-0123456789"


def seed(engine: sa.Engine, staff: int, runs_each: int) -> tuple[str, str]:
    settings = Settings(dev=True, school_name="Bench School")
    with Session(engine) as session:
        school = ensure_school(session=session, settings=settings)
        session.commit()
        school_id = school.id
        templates = session.exec(select(ChecklistItem.template_id).distinct()).all()
        items = {
            t: session.exec(select(ChecklistItem.id).where(ChecklistItem.template_id == t)).all()
            for t in templates
        }
    password_hash = hash_password(PASSWORD)
    now = utcnow()
    users = [
        {
            "school_id": school_id,
            "email": f"staff{n}@bench.example",
            "display_name": f"Staff {n:04d}",
            "role": Role.staff,
            "is_active": True,
            "password_hash": password_hash,
            "password_changed_at": now,
            "failed_login_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(staff)
    ]
    users.append(
        {**users[0], "email": "lead@bench.example", "display_name": "Lead", "role": Role.slt}
    )
    rng = random.Random(7)
    with engine.begin() as connection:
        connection.execute(sa.insert(User), users)
        user_ids = (
            connection.execute(sa.select(User.id).where(User.role == Role.staff)).scalars().all()
        )
        run_rows = []
        for user_id in user_ids:
            for n in range(runs_each):
                template_id = templates[n % len(templates)]
                due = now + timedelta(days=rng.randint(-20, 40))
                run_rows.append(
                    {
                        "school_id": school_id,
                        "template_id": template_id,
                        "assignee_id": user_id,
                        "reason": "assigned",
                        "due_at": due,
                        "created_at": now,
                        "updated_at": now,
                        "completed_at": now if rng.random() < 0.4 else None,
                    }
                )
        connection.execute(sa.insert(ChecklistRun), run_rows)
        runs = connection.execute(sa.select(ChecklistRun.id, ChecklistRun.template_id)).all()
        completions = [
            {"run_id": run_id, "item_id": item_id, "completed_at": now, "note": ""}
            for run_id, template_id in runs
            for item_id in items[template_id][: rng.randint(0, len(items[template_id]))]
        ]
        connection.execute(sa.insert(ItemCompletion), completions)
    return "lead@bench.example", "staff0@bench.example"


def timed(client: TestClient, path: str, repeat: int) -> list[float]:
    client.get(path)  # warm up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text[:200]
    return samples


def sign_in(client: TestClient, email: str) -> None:
    import re

    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get("/login").text).group(1)
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303, response.text[:300]


def measure(url: str, staff: int, runs_each: int, repeat: int) -> list[tuple]:
    engine = use_chain_key(make_engine(url), SECRET)
    upgrade_to_head(engine)
    lead, member = seed(engine, staff, runs_each)
    settings = Settings(
        dev=True, secret_key=SECRET, database_url=url, worker="off", school_name="Bench School"
    )
    rows = []
    app = create_app(settings, engine)
    for who, path in [(lead, "/checklists/oversight"), (member, "/checklists"), (None, "/healthz")]:
        with TestClient(app, follow_redirects=False) as client:
            if who:
                sign_in(client, who)
            samples = timed(client, path, repeat)
        rows.append(
            (
                engine.dialect.name,
                path,
                statistics.median(samples),
                sorted(samples)[int(len(samples) * 0.95) - 1],
            )
        )
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--staff", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    results = []
    for url in database_urls(args.database_url):
        results += measure(url, args.staff, args.runs, args.repeat)
    print(f"{args.staff} staff x {args.runs} checklist runs, {args.repeat} requests each")
    print(f"{'database':<12}{'page':<26}{'median ms':>10}{'p95 ms':>10}")
    for database, path, median, p95 in results:
        print(f"{database:<12}{path:<26}{median:>10.1f}{p95:>10.1f}")


if __name__ == "__main__":
    main()
