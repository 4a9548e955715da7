"""Haven as it is deployed: `haven serve --workers N` with HAVEN_WORKER=off, and a separate
`haven worker` delivering webhooks (as docker-compose.yml runs them), each its own process."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def haven_environment(database_url: str, folder: Path, **settings: str) -> dict[str, str]:
    """The settings of a production deployment (not development mode), for this database."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("HAVEN_") and key != "PYTHONPATH"
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "HAVEN_DATABASE_URL": database_url,
            "HAVEN_SECRET_KEY": secrets.token_urlsafe(48),
            "HAVEN_DEV": "false",
            "HAVEN_EVIDENCE_DIR": str(folder / "evidence"),
            "HAVEN_SCHOOL_NAME": "Bench School",
        }
    )
    env.update({f"HAVEN_{key.upper()}": value for key, value in settings.items()})
    return env


def haven(*args: str, env: dict, log: Path) -> subprocess.Popen:
    """`haven ARGS` in its own process group, with its output in `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "app", *args],
            env=env,
            cwd=log.parent,  # no stray .env file is read
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_haven(*args: str, env: dict, log: Path) -> None:
    process = haven(*args, env=env, log=log)
    if process.wait(timeout=600) != 0:
        raise RuntimeError(f"haven {' '.join(args)} failed; see {log}")


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL to the process group it was started in."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "children").read_text().split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        found += [int(child) for child in text]
    return found


def web_workers(server: subprocess.Popen) -> list[int]:
    """The uvicorn worker processes under `haven serve` (not multiprocessing's helpers)."""
    pids = []
    for pid in children(server.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command and b"resource_tracker" not in command:
            pids.append(pid)
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far, with that of their children
    which have ended (PostgreSQL's autovacuum workers come and go: the server counts them)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    """Every process of the PostgreSQL server on this machine: backends, WAL writer and the rest."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return pids


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Deployment:
    """The web server and the webhook worker on one database, started and stopped together."""

    def __init__(self, database_url: str, folder: Path, workers: int, **settings: str):
        self.folder = folder
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = haven_environment(database_url, folder, **settings)
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def migrate(self) -> None:
        run_haven("migrate", env=self.env, log=self.folder / "migrate.log")

    def start(self) -> None:
        web = {**self.env, "HAVEN_WORKER": "off"}
        self.worker = haven("worker", env=self.env, log=self.folder / "worker.log")
        self.server = haven(
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            env=web,
            log=self.folder / "serve.log",
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None or self.worker.poll() is not None:
                raise RuntimeError(f"Haven stopped while starting; see the logs in {self.folder}")
            # One worker is the server process itself; more are its children.
            if self.workers == 1 or len(web_workers(self.server)) == self.workers:
                try:
                    # Each worker answers once it is up; ask a few times to reach them all.
                    if all(
                        httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200
                        for _ in range(4 * self.workers)
                    ):
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.25)
        raise RuntimeError(f"Haven did not start within a minute; see the logs in {self.folder}")

    def worker_rss_mb(self) -> list[float]:
        return [rss_mb(pid) for pid in web_workers(self.server)]

    def stop(self) -> None:
        for process in (self.server, self.worker):
            if process is not None:
                stop(process)
        self.server = self.worker = None
