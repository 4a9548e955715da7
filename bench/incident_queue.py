"""Time the DSL's incident queue and the incidents API list with 10,000 incidents.

    .venv/bin/python bench/incident_queue.py [--incidents 10000] [--database-url URL]

Without --database-url it measures SQLite (a temporary file) and PostgreSQL at
postgresql+psycopg://postgres@127.0.0.1:5432/postgres (a throwaway database is made there).
Figures are for the page through the ASGI app, without the network.
"""

import argparse
import random
import re
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import pyotp
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audit.service import SYSTEM, use_chain_key
from app.auth import service as auth_service
from app.auth.models import ApiTokenCreate, Role, Scope, UserCreate
from app.core.config import Settings
from app.core.db import make_engine
from app.core.migrations import upgrade_to_head
from app.core.types import utcnow
from app.incidents.models import Incident
from app.install import ensure_school
from app.main import create_app
from bench.databases import database_urls

PASSWORD = "bench-password-123"
SECRET = "bench-secret-key-0123456789-0123456789"
PLATFORMS = ["tiktok", "facebook", "instagram", "snapchat", "x", "youtube", "whatsapp", "other"]
CATEGORIES = ["malicious_post", "online_petition", "allegation", "harassment", "phone_misuse"]


def seed(engine: sa.Engine, count: int) -> tuple[str, str, str]:
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
        raw, _ = auth_service.create_api_token(
            session=session,
            school_id=school.id,
            actor=SYSTEM,
            data=ApiTokenCreate(name="bench", scopes=[Scope.incidents_read]),
        )
        session.commit()
        school_id, secret = school.id, seed
    rng = random.Random(11)
    now = utcnow()
    rows = []
    for n in range(count):
        at = now - timedelta(minutes=n * 7)
        rows.append(
            {
                "school_id": school_id,
                "reference": f"INC-B-{n:07d}",
                "title": f"Bench incident {n}",
                "description": "Seeded for the benchmark.",
                "occurred_at": at,
                "reported_at": at,
                "platform": rng.choice(PLATFORMS),
                "category": rng.choice(CATEGORIES),
                "offender_type": "pupil",
                "target_type": "staff",
                "content_flags": [],
                "suspected_criminal_offence": False,
                "removal_requested": False,
                "removal_refused": False,
                "status": rng.choice(["open", "in_progress", "closed"]),
                "severity": rng.choice(["low", "medium", "high", "critical"]),
                "outcome": "",
                "created_at": at,
                "updated_at": at,
            }
        )
    with engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(sa.insert(Incident), rows[start : start + 5000])
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE")
    return "dsl@bench.example", secret, raw


def sign_in(client: TestClient, email: str, secret: str) -> None:
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    page = client.get("/login/second-factor").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    response = client.post(
        "/login/second-factor", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token}
    )
    assert response.status_code == 303, response.text[:300]


def timed(client: TestClient, path: str, repeat: int, **kwargs) -> tuple[float, float]:
    client.get(path, **kwargs)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path, **kwargs)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text[:200]
    return statistics.median(samples), sorted(samples)[int(len(samples) * 0.95) - 1]


def measure(url: str, count: int, repeat: int) -> list[tuple]:
    engine = use_chain_key(make_engine(url), SECRET)
    upgrade_to_head(engine)
    email, secret, token = seed(engine, count)
    settings = Settings(
        dev=True, secret_key=SECRET, database_url=url, worker="off", log_level="warning"
    )
    app = create_app(settings, engine)
    results = []
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, email, secret)
        for path in [
            "/incidents",
            "/incidents?status=open&platform=tiktok",
            "/incidents?sort=severity",
            "/incidents?q=bench+incident+42",
        ]:
            results.append((engine.dialect.name, path, *timed(client, path, repeat)))
        api = {"Authorization": f"Bearer {token}"}
        results.append(
            (
                engine.dialect.name,
                "/api/v1/incidents?limit=100",
                *timed(client, "/api/v1/incidents?limit=100", repeat, headers=api),
            )
        )
        results.append((engine.dialect.name, "/healthz", *timed(client, "/healthz", repeat)))
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    results = []
    for url in database_urls(args.database_url):
        results += measure(url, args.incidents, args.repeat)
    print(f"{args.incidents} incidents, {args.repeat} requests each")
    print(f"{'database':<12}{'page':<42}{'median ms':>10}{'p95 ms':>10}")
    for database, path, median, p95 in results:
        print(f"{database:<12}{path:<42}{median:>10.1f}{p95:>10.1f}")


if __name__ == "__main__":
    main()
