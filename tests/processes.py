"""Haven run as a real process (`python -m app serve`), and the waiting that goes with it."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, *, timeout: float, interval: float = 0.1, what: str = "a condition"):
    """Call `check` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception as exc:  # not there yet
            last = exc
        else:
            if result:
                return result
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what} after {timeout} s (last error: {last!r})")


class HavenProcess:
    """`python -m app serve` on a free port, with its own settings and log file."""

    def __init__(self, *, database_url: str, workdir: Path, worker: str = "off", **settings):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log_path = workdir / f"haven-{self.port}.log"
        # The settings come from here alone: no HAVEN_* of the shell, no .env (cwd is workdir).
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HAVEN_")}
        self.env.update(
            {
                "HAVEN_DATABASE_URL": database_url,
                "HAVEN_SECRET_KEY": TEST_SECRET,
                "HAVEN_EVIDENCE_DIR": str(workdir / "evidence"),
                "HAVEN_WORKER": worker,
                "HAVEN_LOG_LEVEL": "warning",
                "HAVEN_SCHOOL_NAME": "Test School",
            }
        )
        self.env.update({f"HAVEN_{key.upper()}": str(value) for key, value in settings.items()})
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "HavenProcess":
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--port", str(self.port)],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"Haven exited with {self.process.returncode}:\n{self.log}")
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200

        try:
            wait_for(up, timeout=timeout, what="Haven to answer /healthz")
        except AssertionError as exc:
            self.kill()
            raise AssertionError(f"{exc}\n{self.log}") from None
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing, as when a machine loses power."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=15, **kwargs)
