"""Faults Haven must survive, with Haven run as a real process (`python -m app serve`).

What these tests need from the machine (PostgreSQL's server programs, root for a tiny tmpfs) is
missing on some developer machines: the tests are then skipped, saying why. CI sets
HAVEN_REQUIRE_RESILIENCE=1, which turns each of those skips into a failure.

Every wait here is bounded, and no test asserts how long anything took.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import HavenProcess, free_port

REQUIRE = os.environ.get("HAVEN_REQUIRE_RESILIENCE", "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Skip for want of something on this machine, or fail when CI requires these tests."""
    if REQUIRE:
        pytest.fail(f"{reason} (HAVEN_REQUIRE_RESILIENCE is set, so this cannot be skipped)")
    pytest.skip(reason)


# PostgreSQL, a cluster of our own -------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: pg_config's answer, else Debian's newest, else the PATH."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        answer = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if answer.returncode == 0:
            candidates.append(Path(answer.stdout.strip()))

    def version(path: Path) -> float:
        try:
            return float(path.parent.name)
        except ValueError:
            return 0.0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


class PostgresCluster:
    """A throwaway PostgreSQL server in a temporary folder, on a port of its own.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` account
    (or `nobody`), and its programs run as that user."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="haven-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.run_as: dict = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                account = pwd.getpwnam("nobody")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        answer = subprocess.run(
            [str(self.bindir / program), *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            **self.run_as,
        )
        if answer.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError(
                f"{program} {' '.join(args)} failed:\n{answer.stdout}{answer.stderr}\n"
                + (log.read_text() if log.exists() else "")
            )

    def init(self) -> None:
        options = ["-U", "postgres", "-A", "trust", "--no-sync", "--no-locale", "-E", "UTF8"]
        self._run("initdb", "-D", str(self.data), *options)

    def start(self) -> None:
        # fsync and full page writes guard against the machine crashing, not PostgreSQL: what it
        # acknowledged still survives `pg_ctl stop -m immediate` without them.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=50"
        )
        log = str(self.root / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "30", "-o", options, "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A started throwaway PostgreSQL cluster, removed afterwards."""
    bindir = postgres_bindir()
    if bindir is None:
        unavailable(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed: "
            "apt-get install postgresql"
        )
    cluster = PostgresCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


# Haven, as a process ---------------------------------------------------------------------------


@pytest.fixture
def haven_process(tmp_path) -> Iterator:
    """Makes Haven processes (`make(database_url=..., worker=...)`); all are stopped afterwards."""
    made: list[HavenProcess] = []

    def make(**kwargs) -> HavenProcess:
        haven = HavenProcess(workdir=tmp_path, **kwargs)
        made.append(haven)
        return haven

    yield make
    for haven in made:
        haven.stop()
