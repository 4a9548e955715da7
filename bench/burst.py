"""A burst of writes at once on SQLite: a staff meeting acknowledging a new policy together,
then as many reports of a concern sent at the same moment, through `haven serve` (with
`haven worker` beside it, as it is deployed).

    .venv/bin/python -m bench.burst [--writers 100] [--workers 1]

Each writer is a member of staff already signed in (a browser session of their own, its CSRF
cookie and token read from a page first); all of them send their form at the same moment.
Prints, for each burst, how many were saved (answered 303), how many were refused (and how),
and the p50, p99 and slowest answer, and writes bench/results/burst.json. `tests/core/
test_sqlite_writers.py` sends the same burst to a server in the test's process.
"""

import argparse
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audit.service import SYSTEM, use_chain_key
from app.auth import service as auth_service
from app.auth.models import Role, User, UserCreate
from app.core.config import Settings
from app.core.db import make_engine
from app.core.types import utcnow
from app.install import ensure_school
from app.policies import flows as policy_flows
from app.policies import service as policy_service
from app.policies.models import PolicyCreate, VersionCreate

RESULTS = Path(__file__).resolve().parent / "results"
PASSWORD = "bench-password-0123456789"


@dataclass
class Burst:
    """What the writers need: their session cookies, and the policy they acknowledge."""

    sessions: list[str]
    policy_id: int
    version: int


def prepare(engine: sa.Engine, settings: Settings, writers: int) -> Burst:
    """`writers` members of staff, each signed in, and a staff policy just published."""
    use_chain_key(engine, settings.secret_key)
    with Session(engine, expire_on_commit=False) as session:
        school = ensure_school(session=session, settings=settings)
        slt = _user(session, school.id, "head@burst.example", Role.slt)
        staff = [_user(session, school.id, f"teacher{n}@burst.example") for n in range(writers)]
        policy = policy_service.create_policy(
            session=session,
            school_id=school.id,
            actor=SYSTEM,
            data=PolicyCreate(
                title="Staff code of conduct online", kind="social_media", audience="staff"
            ),
        )
        version = policy_service.add_version(
            session=session,
            policy=policy,
            actor=SYSTEM,
            data=VersionCreate(
                body="# Online conduct\n\nKeep pupils' names off social media.",
                effective_from=date.today(),
                review_due=date.today() + timedelta(days=365),
            ),
        )
        policy_service.approve(
            session=session, policy=policy, version=version, approver=slt, actor=SYSTEM
        )
        policy_flows.publish(session=session, policy=policy, version=version, actor=SYSTEM)
        sessions = [
            auth_service.start_session(
                session=session, user=user, settings=settings, user_agent="burst", actor=SYSTEM
            )[0]
            for user in staff
        ]
        session.commit()
    return Burst(sessions=sessions, policy_id=policy.id, version=version.number)


def _user(session: Session, school_id: int, email: str, role: Role = Role.staff) -> User:
    data = UserCreate(email=email, display_name=email.split("@")[0], role=role, password=PASSWORD)
    return auth_service.create_user(session=session, school_id=school_id, data=data, actor=SYSTEM)


def report_form(n: int) -> dict:
    occurred = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    return {
        "title": f"Comments about a teacher under a school post ({n})",
        "description": "Several accounts left comments naming a member of staff.",
        "occurred_at": occurred,
        "platform": "instagram",
        "category": "malicious_post",
        "offender_type": "parent_carer",
        "target_type": "staff",
    }


def signed_in(client: httpx.Client, raw_session: str) -> tuple[dict, str]:
    """The headers a signed-in browser sends, carrying its cookies by hand (Haven's cookies are
    Secure, and the server here speaks http), and the CSRF token its forms send."""
    page = client.get("/report", headers={"Cookie": f"haven_session={raw_session}"})
    assert page.status_code == 200, page.text[:300]
    csrf_cookie = page.cookies.get("haven_csrf") or ""
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
    return {"Cookie": f"haven_session={raw_session}; haven_csrf={csrf_cookie}"}, token


def client_for(base_url: str) -> httpx.Client:
    """One client for every writer, with a connection each."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    return httpx.Client(base_url=base_url, timeout=120, follow_redirects=False, limits=limits)


def send(base_url: str, burst: Burst, kinds: list[str]) -> list[tuple[str, int, float, str]]:
    """Each writer sends its form (kinds[i]: "acknowledge" or "report") at the same moment.
    Returns (kind, status, milliseconds, what a refusal said) for each."""
    client = client_for(base_url)
    browsers = [signed_in(client, raw) for raw in burst.sessions[: len(kinds)]]
    start = threading.Barrier(len(kinds))
    answers: list = [None] * len(kinds)

    def write(i: int) -> None:
        headers, token = browsers[i]
        if kinds[i] == "acknowledge":
            path = f"/policies/{burst.policy_id}/acknowledge"
            form = {"number": str(burst.version)}
        else:
            path, form = "/report", report_form(i)
        start.wait()
        began = time.perf_counter()
        try:
            response = client.post(path, data={**form, "csrf_token": token}, headers=headers)
            status, text = response.status_code, response.text
        except httpx.TransportError as exc:
            status, text = 0, repr(exc)
        elapsed = (time.perf_counter() - began) * 1000
        answers[i] = (kinds[i], status, elapsed, "" if status == 303 else _said(text))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(kinds))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    client.close()
    return answers


def _said(html: str) -> str:
    """The message of a refused answer, as a person would read it."""
    text = re.sub(r"<[^>]+>", " ", html)
    for phrase in ("Haven is busy", "cannot reach its database", "went wrong"):
        if phrase in text:
            return phrase
    return " ".join(text.split())[:80]


def summary(answers: list[tuple[str, int, float, str]]) -> dict:
    times = sorted(ms for _, _, ms, _ in answers)
    return {
        "sent": len(answers),
        "saved": sum(1 for _, status, _, _ in answers if status == 303),
        "refused": dict(Counter(f"{status} {said}" for _, status, _, said in answers if said)),
        "p50_ms": round(statistics.median(times), 1),
        "p99_ms": round(times[max(0, int(len(times) * 0.99) - 1)], 1),
        "max_ms": round(times[-1], 1),
    }


def main() -> None:
    from bench.processes import Deployment

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1, help="web worker processes")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="haven-burst-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder}/haven.db"
        deployment = Deployment(url, folder, args.workers, log_level="warning")
        deployment.migrate()
        secret_key = deployment.env["HAVEN_SECRET_KEY"]
        engine = make_engine(url)
        burst = prepare(engine, Settings(database_url=url, secret_key=secret_key), args.writers)
        engine.dispose()
        deployment.start()
        try:
            for kind in ("acknowledge", "report"):
                result = summary(send(deployment.url, burst, [kind] * args.writers))
                rows.append({"burst": kind, "workers": args.workers, **result})
                print(
                    f"{args.writers} at once, {kind:<11}: {result['saved']} saved, "
                    f"refused {result['refused'] or 'none'}; p50 {result['p50_ms']:.0f} ms, "
                    f"p99 {result['p99_ms']:.0f} ms, slowest {result['max_ms']:.0f} ms",
                    flush=True,
                )
        finally:
            deployment.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "burst.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
