"""docker/entrypoint.sh, run on the host with the virtualenv's `haven` on the PATH.

A container whose settings are wrong must stop at once with one line saying
what to fix (issue 10, "Bad input"). scripts/container-smoke proves the same
inside the real image; this test keeps it true in the ordinary test suite.
"""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from app.core.config import DEFAULT_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent
# what each container of docker-compose.yml starts with
COMMANDS = ["migrate", "serve", "worker"]
UNREACHABLE_DATABASE = "postgresql+psycopg://haven:haven@127.0.0.1:1/haven"


@pytest.fixture
def run(tmp_path):
    """Run the entrypoint as a container would: a clean environment, HAVEN_DEV off."""
    good = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "HAVEN_DEV": "false",
        "HAVEN_SECRET_KEY": secrets.token_urlsafe(48),
        "HAVEN_DATABASE_URL": f"sqlite:///{tmp_path / 'haven.db'}",
        "HAVEN_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "HAVEN_WORKER": "off",
    }

    def _run(
        *args: str, wrap: list[str] = (), **changes: str | None
    ) -> subprocess.CompletedProcess:
        env = {**good, **changes}
        env = {key: value for key, value in env.items() if value is not None}
        return subprocess.run(
            [*wrap, str(ENTRYPOINT), *args],
            env=env,
            cwd=tmp_path,  # no stray .env from the work tree
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return _run


def assert_one_clear_line(result: subprocess.CompletedProcess, *words: str) -> None:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, lines)
    assert len(lines) == 1, lines
    assert lines[0].startswith("haven: "), lines[0]
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]


def test_good_settings_migrate_and_exit_zero(run, tmp_path):
    # the control for the failures below: the same environment, nothing wrong
    result = run("migrate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "haven.db").exists()


def test_haven_commands_and_other_programs(run):
    assert run("--help").returncode == 0
    assert run("haven", "--help").returncode == 0
    shell = run("sh", "-c", "echo from-a-shell")
    assert shell.returncode == 0
    assert shell.stdout.strip() == "from-a-shell"


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_secret_key(run, command):
    assert_one_clear_line(run(command, HAVEN_SECRET_KEY=None), "HAVEN_SECRET_KEY")


@pytest.mark.parametrize("command", COMMANDS)
def test_default_secret_key(run, command):
    assert_one_clear_line(run(command, HAVEN_SECRET_KEY=DEFAULT_SECRET_KEY), "HAVEN_SECRET_KEY")


@pytest.mark.parametrize("command", COMMANDS)
def test_evidence_dir_that_cannot_be_created(run, tmp_path, command):
    # a file where a folder should be: not writable, even for root (CI runs as root)
    (tmp_path / "not-a-folder").write_text("x")
    evidence = tmp_path / "not-a-folder" / "evidence"
    assert_one_clear_line(run(command, HAVEN_EVIDENCE_DIR=str(evidence)), "evidence")


def test_read_only_evidence_dir(run, tmp_path):
    # the container's case: Haven runs as a user who may not write the folder.
    # Root writes through file modes, so as root (CI) run it as nobody.
    wrapper: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            pytest.skip("running as root without setpriv to drop privileges")
        wrapper = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        if run("--help", wrap=wrapper).returncode != 0:
            pytest.skip("nobody cannot run the virtualenv's haven here")
    evidence = Path(tempfile.mkdtemp()) / "evidence"
    evidence.mkdir(mode=0o555)
    evidence.parent.chmod(0o755)
    try:
        result = run("serve", wrap=wrapper, HAVEN_EVIDENCE_DIR=str(evidence))
        assert_one_clear_line(result, "HAVEN_EVIDENCE_DIR", "not writable")
    finally:
        shutil.rmtree(evidence.parent)


@pytest.mark.parametrize("command", COMMANDS)
def test_unreachable_database(run, command):
    assert_one_clear_line(run(command, HAVEN_DATABASE_URL=UNREACHABLE_DATABASE), "database")
