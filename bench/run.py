"""Haven under load, as it is deployed, on PostgreSQL and SQLite: one table of figures.

    scripts/bench [--levels 1000,100000,1000000] [--databases postgresql,sqlite] [--duration 10]

For each database (a throwaway PostgreSQL database on 127.0.0.1:5432, and a temporary SQLite
file) and each size of the incident table, it seeds the data in bulk, starts `haven serve
--workers <cores>` with HAVEN_WORKER=off and a separate `haven worker`, and drives each measured
request with wrk at 16 connections: /healthz (the baseline), POST /api/v1/incidents, the DSL's
queue page, GET /api/v1/incidents, the staff checklist page and PUT /api/v1/people with 2,000
people. Then it times escalation-to-delivered through the worker to a local receiver and reads
the resident memory of each web worker. Results go to bench/results/ as JSON and Markdown.
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx
import pyotp
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audit.service import use_chain_key
from app.core.db import make_engine
from bench import seed
from bench.databases import POSTGRES_SERVER, throwaway_postgres
from bench.escalation_latency import median_and_p99, receiver, time_escalations
from bench.processes import ROOT, Deployment, cpu_seconds, postgres_pids, web_workers

LUA = ROOT / "bench" / "wrk" / "request.lua"
RESULTS = ROOT / "bench" / "results"

# What Haven must do on PostgreSQL with 16 connections (the README lists them too).
TARGETS = {
    "create_ratio": 0.10,  # incident create: at least this share of the baseline's req/s
    "create_p99_ms": 100,
    "read_ratio": 0.15,  # queue page and API list
    "scale_ratio": 1.25,  # median latency at the largest size / at the smallest
    "escalation_p99_ms": 1000,
    "rss_mb": 200,
}


@dataclass(frozen=True)
class Request:
    key: str
    label: str
    method: str
    path: str
    auth: str  # "", "dsl", "staff" or "token"
    status: int
    body: str = ""  # file name in the run's folder


REQUESTS = [
    Request("healthz", "GET /healthz (baseline)", "GET", "/healthz", "", 200),
    Request("queue", "DSL queue page GET /incidents", "GET", "/incidents", "dsl", 200),
    Request("list", "API list GET /api/v1/incidents", "GET", "/api/v1/incidents", "token", 200),
    Request("checklists", "Staff checklists GET /checklists", "GET", "/checklists", "staff", 200),
    Request(
        "roster",
        "Roster upsert PUT /api/v1/people (2,000)",
        "PUT",
        "/api/v1/people",
        "token",
        200,
        "roster.json",
    ),
    # Last: every create adds an incident, and an escalation for the worker to deliver.
    Request(
        "create",
        "Incident create POST /api/v1/incidents",
        "POST",
        "/api/v1/incidents",
        "token",
        201,
        "incident.json",
    ),
]


# Signing in as a browser does --------------------------------------------------------------------


def _cookies(response: httpx.Response, jar: dict) -> None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


def sign_in(base: str, email: str, totp_secret: str | None = None) -> str:
    """Sign in through the login form (and the second factor); the Cookie header to send.
    Haven's cookies are Secure outside development, so they are carried by hand over http."""
    jar: dict[str, str] = {}
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:

        def send(method: str, path: str, **kwargs) -> httpx.Response:
            cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
            response = client.request(method, path, headers={"Cookie": cookie}, **kwargs)
            _cookies(response, jar)
            return response

        token = _csrf(send("GET", "/login").text)
        form = {"email": email, "password": seed.PASSWORD, "csrf_token": token}
        response = send("POST", "/login", data=form)
        assert response.status_code == 303, response.text[:300]
        if totp_secret:
            token = _csrf(send("GET", "/login/second-factor").text)
            code = pyotp.TOTP(totp_secret).now()
            response = send(
                "POST", "/login/second-factor", data={"code": code, "csrf_token": token}
            )
            assert response.status_code == 303, response.text[:300]
        send("GET", "/")  # the CSRF cookie a browser holds from then on
    return "; ".join(f"{k}={v}" for k, v in jar.items())


# wrk ------------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk from Debian's packages, installed with apt-get when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: installing wrk with apt-get", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "wrk"], check=True)  # noqa: S603
    return shutil.which("wrk") or sys.exit("bench: wrk could not be installed")


def run_wrk(
    base: str, request: Request, headers: list[str], folder: Path, seconds: int, args
) -> dict:
    env = {
        **os.environ,
        "BENCH_METHOD": request.method,
        "BENCH_HEADERS": "\n".join(headers),
        "BENCH_BODY_FILE": str(folder / request.body) if request.body else "",
    }
    command = [
        "wrk",
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        f"--script={LUA}",
        base + request.path,
    ]
    output = subprocess.run(  # noqa: S603 - wrk with our own arguments
        command, env=env, capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH_RESULT "))
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    errors = sum(raw["errors"].values())
    return {
        "requests": raw["requests"],
        "errors": errors,
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p95_ms": raw["latency_us"]["p95"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "max_ms": raw["latency_us"]["max"] / 1000,
    }


def measure_with_cpu(haven: Deployment, database: str, load) -> dict:
    """wrk's figures, and the CPU time spent per request by Haven's web workers, by `haven
    worker` and by PostgreSQL: what a request costs, which neighbours on a shared machine change
    far less than requests per second. (On SQLite the database's work is in Haven's processes.)"""
    groups = {
        "web_cpu_ms": web_workers(haven.server),
        "worker_cpu_ms": [haven.worker.pid],
        "database_cpu_ms": postgres_pids() if database == "postgresql" else None,
    }
    before = {key: cpu_seconds(pids) for key, pids in groups.items() if pids is not None}
    result = load()
    per_request = 1000 / max(result["requests"], 1)
    for key, pids in groups.items():
        used = cpu_seconds(pids) - before[key] if pids is not None else None
        result[key] = used * per_request if used is not None else None
    return result


def check_once(base: str, request: Request, headers: list[str], folder: Path) -> None:
    """One request as wrk will send it, so a redirect or a refusal stops the run."""
    content = (folder / request.body).read_bytes() if request.body else None
    fields = dict(line.split(": ", 1) for line in headers)
    response = httpx.request(
        request.method, base + request.path, headers=fields, content=content, timeout=60
    )
    if response.status_code != request.status:
        raise RuntimeError(
            f"{request.method} {request.path} answered {response.status_code}, "
            f"not {request.status}: {response.text[:300]}"
        )


# One database -------------------------------------------------------------------------------------


def write_bodies(folder: Path, school: seed.School) -> None:
    (folder / "roster.json").write_text(json.dumps({"people": school.roster}))
    occurred = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    incident = {
        "title": "Abusive comments about a pupil under a school post",
        "description": "Several accounts left abusive comments naming a Year 8 pupil under the "
        "school's post about sports day. Screenshots taken at 19:40.",
        "occurred_at": occurred,
        "platform": "instagram",
        "category": "harassment",
        "offender_type": "unknown",
        "target_type": "pupil",  # the rule pupil-involved fires, and abusive: harmful-content
        "content_flags": ["abusive"],
        "removal_requested": True,
        "people": [
            {"person_id": school.pupil_ids[0], "role": "victim"},
            {"label": "A parent who reported it", "role": "witness"},
        ],
    }
    (folder / "incident.json").write_text(json.dumps(incident))


def wait_for_outbox(engine: sa.Engine, timeout: float = 600) -> float:
    """Seconds until the worker has delivered every message waiting (the create load's)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with engine.connect() as connection:
            pending = connection.exec_driver_sql(
                "SELECT count(*) FROM outbox_message WHERE status = 'pending'"
            ).scalar_one()
        if pending == 0:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"the worker left messages undelivered after {timeout:.0f} s")


def count_incidents(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT count(*) FROM incident").scalar_one()


def measure_database(name: str, url: str, folder: Path, args, log, rows: list, save) -> None:
    engine = make_engine(url)
    arrivals: dict[str, float] = {}
    inbox = receiver(arrivals)
    haven = Deployment(
        url,
        folder,
        args.workers,
        api_rate_limit="1000000/second",  # the benchmark's one token sends thousands a second
        webhook_allow_cidrs="127.0.0.0/8",  # the receiver is on this machine
        log_level=args.log_level,
    )
    use_chain_key(engine, haven.env["HAVEN_SECRET_KEY"])  # events seeded as Haven chains them
    try:
        haven.migrate()
        school = seed.prepare_school(
            engine, f"http://127.0.0.1:{inbox.server_port}/hook", haven.env["HAVEN_SECRET_KEY"]
        )
        write_bodies(folder, school)
        cookies: dict[str, str] = {}
        for level in args.levels:
            if name == "sqlite" and level > args.sqlite_max:
                log(f"{name}: {level:,} incidents skipped (--sqlite-max {args.sqlite_max:,})")
                continue
            log(f"{name}: seeding up to {level:,} incidents")
            seconds = seed.add_incidents(engine, school, level - school.incidents, log=log)
            log(f"{name}: {level:,} incidents seeded in {seconds:.0f} s; starting Haven")
            engine.dispose()
            haven.start()
            try:
                if not cookies:
                    cookies["dsl"] = sign_in(haven.url, school.dsl_email, school.dsl_totp_secret)
                    cookies["staff"] = sign_in(haven.url, school.staff_email)
                auth = {
                    "": [],
                    "dsl": [f"Cookie: {cookies['dsl']}"],
                    "staff": [f"Cookie: {cookies['staff']}"],
                    "token": [
                        f"Authorization: Bearer {school.api_token}",
                        "Content-Type: application/json",
                    ],
                }
                base = {"database": name, "incidents": level, "seed_seconds": round(seconds, 1)}
                for request in REQUESTS:
                    if request.key not in args.measures:
                        continue
                    headers = auth[request.auth]
                    check_once(haven.url, request, headers, folder)
                    run_wrk(haven.url, request, headers, folder, args.warmup, args)
                    result = measure_with_cpu(
                        haven,
                        name,
                        partial(run_wrk, haven.url, request, headers, folder, args.duration, args),
                    )
                    log(
                        f"{name} {level:>9,} {request.key:<10} {result['rps']:8.1f} req/s  "
                        f"p50 {result['p50_ms']:7.1f}  p99 {result['p99_ms']:7.1f} ms  "
                        f"CPU/request {_cpu(result)} ms"
                        + (f"  {result['errors']} errors" if result["errors"] else "")
                    )
                    rows.append({**base, "measure": request.key, **result})
                rss = haven.worker_rss_mb()
                rows.append({**base, "measure": "rss", "rss_mb": rss})
                if not args.escalations:
                    save()
                    continue
                drained = wait_for_outbox(engine)
                log(f"{name}: the create load's webhooks delivered {drained:.0f} s later")
                latencies = time_escalations(engine, school.id, args.escalations, arrivals)
                median, p99 = median_and_p99(latencies)
                base["incidents_after"] = count_incidents(engine)
                rows.append(
                    {
                        **base,
                        "measure": "escalation",
                        "delivered": len(latencies),
                        "sent": args.escalations,
                        "p50_ms": median,
                        "p99_ms": p99,
                        "backlog_drain_s": round(drained, 1),
                    }
                )
                log(f"{name}: escalation to delivered median {median:.0f} ms, p99 {p99:.0f} ms")
                save()  # each size as it is done: a run cut short keeps what it measured
            finally:
                haven.stop()
    finally:
        haven.stop()
        inbox.shutdown()
        engine.dispose()


@contextmanager
def database(name: str, folder: Path):
    if name == "sqlite":
        yield f"sqlite:///{folder}/haven.db"
    else:
        with throwaway_postgres(POSTGRES_SERVER) as url:
            yield url


# The table ----------------------------------------------------------------------------------------


def _fmt(value, digits=1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


CPU_KEYS = ("web_cpu_ms", "worker_cpu_ms", "database_cpu_ms")


def _cpu(row: dict) -> str:
    """CPU ms per request of the web workers, `haven worker` and PostgreSQL (if measured)."""
    return ", ".join(_fmt(row[key], 2) for key in CPU_KEYS if row.get(key) is not None)


def evaluate(rows: list[dict]) -> list[dict]:
    """The rows of the table: each figure, its ratio to the baseline, and the target's verdict."""
    table = []
    groups: dict[tuple, dict] = {}
    for row in rows:
        groups.setdefault((row["database"], row["incidents"]), {})[row["measure"]] = row
    sizes: dict[str, list[int]] = {}
    for database, incidents in groups:
        sizes.setdefault(database, []).append(incidents)
    for (database, incidents), measures in groups.items():
        postgres = database == "postgresql"
        baseline = measures.get("healthz", {}).get("rps")
        for request in REQUESTS:
            row = measures.get(request.key)
            if row is None:
                continue
            ratio = row["rps"] / baseline if baseline else None
            target, met = "", None
            if postgres and request.key == "create":
                target = (
                    f"≥ {TARGETS['create_ratio']:.2f} x baseline, "
                    f"p99 < {TARGETS['create_p99_ms']} ms"
                )
                met = ratio >= TARGETS["create_ratio"] and row["p99_ms"] < TARGETS["create_p99_ms"]
            elif postgres and request.key in ("queue", "list"):
                target = f"≥ {TARGETS['read_ratio']:.2f} x baseline"
                met = ratio >= TARGETS["read_ratio"]
            table.append(
                {
                    "database": database,
                    "incidents": incidents,
                    "measure": request.label,
                    "rps": row["rps"],
                    "p50_ms": row["p50_ms"],
                    "p95_ms": row["p95_ms"],
                    "p99_ms": row["p99_ms"],
                    "ratio": ratio,
                    **{key: row.get(key) for key in CPU_KEYS},
                    "errors": row["errors"],
                    "target": target,
                    "met": met,
                }
            )
        if (esc := measures.get("escalation")) is not None:
            met = esc["p99_ms"] < TARGETS["escalation_p99_ms"] and esc["delivered"] == esc["sent"]
            table.append(
                {
                    "database": database,
                    "incidents": incidents,
                    "measure": f"Escalation to delivered ({esc['delivered']}/{esc['sent']})",
                    "p50_ms": esc["p50_ms"],
                    "p99_ms": esc["p99_ms"],
                    "target": f"p99 < {TARGETS['escalation_p99_ms']} ms" if postgres else "",
                    "met": met if postgres else None,
                }
            )
        if (rss := measures.get("rss")) is not None:
            worst = max(rss["rss_mb"]) if rss["rss_mb"] else None
            table.append(
                {
                    "database": database,
                    "incidents": incidents,
                    "measure": "Resident memory per web worker, MB: "
                    + ", ".join(f"{mb:.0f}" for mb in rss["rss_mb"]),
                    "value": worst,
                    "target": f"< {TARGETS['rss_mb']} MB" if postgres else "",
                    "met": (worst < TARGETS["rss_mb"]) if postgres and worst else None,
                }
            )
    for database, levels in sizes.items():
        small, large = min(levels), max(levels)
        if small == large:
            continue
        for key in ("queue", "list"):
            low = groups[(database, small)].get(key)
            high = groups[(database, large)].get(key)
            if not low or not high:
                continue
            ratio = high["p50_ms"] / low["p50_ms"]
            label = next(r.label for r in REQUESTS if r.key == key)
            table.append(
                {
                    "database": database,
                    "incidents": large,
                    "measure": f"{label}: median latency at {large:,} / at {small:,} "
                    f"(p99: {high['p99_ms'] / low['p99_ms']:.2f})",
                    "value": ratio,
                    "target": f"≤ {TARGETS['scale_ratio']:.2f}" if database == "postgresql" else "",
                    "met": ratio <= TARGETS["scale_ratio"] if database == "postgresql" else None,
                }
            )
    return table


def markdown(table: list[dict], meta: dict) -> str:
    lines = [
        "# Haven benchmark",
        "",
        f"{meta['date']}, commit {meta['commit']}. {meta['machine']}. "
        f"`haven serve --workers {meta['workers']}` and `haven worker`; wrk, "
        f"{meta['connections']} connections, {meta['duration']} s per measure "
        f"after {meta['warmup']} s of warm-up. {meta['versions']}.",
        "",
        "| database | incidents | measure | req/s | p50 ms | p95 ms | p99 ms | x baseline "
        "| CPU ms per request: web, worker, database | target | |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in table:
        verdict = {True: "met", False: "**missed**", None: ""}[row.get("met")]
        ratio = row.get("ratio", row.get("value"))
        digits = 0 if "memory" in row["measure"] else 2
        if row.get("errors"):
            verdict += f" ({row['errors']} errors)"
        lines.append(
            f"| {row['database']} | {row['incidents']:,} | {row['measure']} "
            f"| {_fmt(row.get('rps'))} | {_fmt(row.get('p50_ms'))} | {_fmt(row.get('p95_ms'))} "
            f"| {_fmt(row.get('p99_ms'))} | {_fmt(ratio, digits)} | {_cpu(row)} "
            f"| {row['target']} | {verdict} |"
        )
    lines += ["", *meta["notes"], ""]
    return "\n".join(lines)


# Run --------------------------------------------------------------------------------------------


def describe_machine() -> str:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = next(
        int(line.split()[1]) // 1024 // 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} cores ({model}), {memory} GB memory, {platform.system()}"


def versions() -> str:
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout  # noqa: S607
    engine = make_engine(POSTGRES_SERVER)
    try:
        with engine.connect() as connection:
            postgres = connection.exec_driver_sql("SHOW server_version").scalar_one()
    except sa.exc.OperationalError:
        postgres = "unreachable"
    finally:
        engine.dispose()
    return (
        f"Python {platform.python_version()}, PostgreSQL {postgres.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}, {' '.join(wrk.split()[:2])}"
    )


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" with local changes" if git("status", "--porcelain", "--", "app") else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--levels",
        default="1000,100000,1000000",
        type=lambda text: [int(n) for n in text.replace("_", "").split(",")],
        help="sizes of the incident table, smallest first",
    )
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--sqlite-max", type=int, default=1_000_000, help="largest SQLite size")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per measure")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="web workers")
    parser.add_argument(
        "--measures",
        default=",".join(r.key for r in REQUESTS),
        type=lambda text: {"healthz", *text.split(",")},
        help="which requests to load (the baseline always): " + ",".join(r.key for r in REQUESTS),
    )
    parser.add_argument("--escalations", type=int, default=200, help="0 to skip the measure")
    parser.add_argument("--log-level", default="info", help="HAVEN_LOG_LEVEL of the processes")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    ensure_wrk()
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {message}", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop Haven and drop the database
    rows: list[dict] = []

    def save() -> str:
        meta = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit(),
            "machine": describe_machine(),
            "versions": versions(),
            "workers": args.workers,
            "connections": args.connections,
            "duration": args.duration,
            "warmup": args.warmup,
            "levels": args.levels,
            "minutes": round((time.monotonic() - started) / 60, 1),
            "notes": NOTES,
        }
        table = evaluate(rows)
        args.out.mkdir(parents=True, exist_ok=True)
        document = {"meta": meta, "targets": TARGETS, "rows": rows, "table": table}
        (args.out / "results.json").write_text(json.dumps(document, indent=2) + "\n")
        text = markdown(table, meta)
        (args.out / "results.md").write_text(text)
        return text

    for name in args.databases.split(","):
        with tempfile.TemporaryDirectory(prefix="haven-bench-") as tmp:
            folder = Path(tmp)
            with database(name, folder) as url:
                measure_database(name, url, folder, args, log, rows, save)
    text = save()
    print()
    print(text)
    minutes = (time.monotonic() - started) / 60
    print(f"bench: {minutes:.1f} minutes; results in {args.out}/results.json and results.md")


NOTES = [
    "The load generator runs on the same machine as Haven and its database, so every figure is "
    "a share of the same cores; the ratios to the baseline (`/healthz`, measured in the same run "
    "against the same server) are what carry from one machine to another.",
    "CPU ms per request is the CPU time spent during the measure by Haven's web workers, by "
    "`haven worker` (which delivers the webhooks creates cause) and by PostgreSQL's processes, "
    "divided by the requests answered: what a request costs, which other load on a shared "
    "machine changes far less than requests per second. On SQLite the database's work is "
    "counted in Haven's processes.",
    "Targets apply on PostgreSQL. Latency at scale compares the median of the largest table with "
    "that of the smallest. Escalation to delivered is timed from the commit of an escalated "
    "incident to the local receiver's 2xx, through `haven worker`, once the create load's own "
    "notices have been delivered.",
]


if __name__ == "__main__":
    main()
