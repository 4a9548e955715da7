"""Running the `haven` command against a fresh database of the suite's kind."""

import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.conftest import TEST_SECRET


@pytest.fixture
def haven(monkeypatch, tmp_path, scratch_database):
    """Run `haven ...` with the environment pointing at a fresh database."""
    url = scratch_database()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAVEN_DATABASE_URL", url)
    monkeypatch.setenv("HAVEN_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("HAVEN_EVIDENCE_DIR", str(tmp_path / "evidence"))
    monkeypatch.delenv("HAVEN_DEV", raising=False)
    runner = CliRunner()

    def run(*args: str, input: str | None = None, ok: bool = True):
        result = runner.invoke(cli, list(args), input=input)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run.url = url
    run("migrate")
    return run
