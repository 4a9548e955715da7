"""Time the roster bulk upsert (PUT /api/v1/people) with 2,000 people.

    .venv/bin/python bench/roster_sync.py [--people 2000] [--rounds 5] [--database-url URL]

Without --database-url it measures SQLite (a temporary file) and PostgreSQL at
postgresql+psycopg://postgres@127.0.0.1:5432/postgres (a throwaway database is made there).
Each round sends the same sizes of request through the ASGI app, without the network:
a first sync into an empty roster (all created), the same request again (all unchanged),
a request where every person changed (all updated), and a full sync with deactivate_missing.
Staff carry emails, so account linking runs as it would for a school.
"""

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audit.service import SYSTEM, use_chain_key
from app.auth import service as auth_service
from app.auth.models import ApiTokenCreate, Scope
from app.core.config import Settings
from app.core.db import make_engine
from app.core.migrations import upgrade_to_head
from app.install import ensure_school
from app.main import create_app
from bench.databases import database_urls

SECRET = "bench-secret-key-0123456789-0123456789"


def roster(count: int, prefix: str, form: str = "8B") -> list[dict]:
    people = []
    for n in range(count):
        staff = n % 10 == 0
        person = {
            "external_id": f"{prefix}-{n}",
            "kind": "staff" if staff else "pupil",
            "forename": f"Forename{n}",
            "surname": f"Surname{n}",
            "preferred_forename": None,
            "year_group": None if staff else f"Year {7 + n % 5}",
            "registration_group": None if staff else form,
            "mis_id": str(100000 + n),
        }
        if staff:
            person["email"] = f"staff{n}@{prefix.lower()}.example"
        else:
            person["upn"] = f"A{n:011d}{n % 10}"
        people.append(person)
    return people


def timed(client: TestClient, headers: dict, body: dict, expect: str, count: int) -> float:
    started = time.perf_counter()
    response = client.put("/api/v1/people", json=body, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    assert response.json()[expect] == count, response.json()
    return elapsed


def measure(url: str, count: int, rounds: int) -> dict[str, list[float]]:
    engine = use_chain_key(make_engine(url), SECRET)
    upgrade_to_head(engine)
    with Session(engine) as session:
        school = ensure_school(session=session, settings=Settings(dev=True))
        raw, _ = auth_service.create_api_token(
            session=session,
            school_id=school.id,
            actor=SYSTEM,
            data=ApiTokenCreate(name="bench", scopes=[Scope.people_write]),
        )
        session.commit()
    settings = Settings(
        dev=True,
        secret_key=SECRET,
        database_url=url,
        worker="off",
        api_rate_limit="100000/minute",
        log_level="warning",
    )
    app = create_app(settings=settings, engine=engine)
    headers = {"Authorization": f"Bearer {raw}"}
    figures: dict[str, list[float]] = {"created": [], "unchanged": [], "updated": [], "full": []}
    with TestClient(app) as client:
        for round_ in range(rounds):
            prefix = f"R{round_}"
            people = roster(count, prefix)
            figures["created"].append(timed(client, headers, {"people": people}, "created", count))
            figures["unchanged"].append(
                timed(client, headers, {"people": people}, "unchanged", count)
            )
            changed = roster(count, prefix, form="9C")
            for person in changed:
                person["registration_group"] = person["registration_group"] and "9C"
                person["surname"] += "-Smith"
            figures["updated"].append(timed(client, headers, {"people": changed}, "updated", count))
            # A full sync of this round's people: the earlier rounds' people leave.
            full = {"people": changed, "deactivate_missing": True}
            figures["full"].append(timed(client, headers, full, "unchanged", count))
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for url in database_urls(args.database_url):
        backend = url.split(":", 1)[0].split("+", 1)[0]
        figures = measure(url, args.people, args.rounds)
        print(f"\n{backend}: PUT /api/v1/people with {args.people:,} people, {args.rounds} rounds")
        for name, times in figures.items():
            print(
                f"  {name:<10} median {statistics.median(times):7.1f} ms   max {max(times):7.1f} ms"
            )


if __name__ == "__main__":
    main()
