"""docker-compose.yml: valid against the Compose specification, and shaped as DESIGN.md §10 says.

No Docker engine runs on our machines, so the file is checked here against the
Compose specification's JSON schema (vendored as compose-spec.json, see
tests/deploy/README.md), and scripts/container-smoke runs the image with the
commands and environment read from the same file.
"""

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft201909Validator

from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")
HAVEN_SERVICES = ("migrate", "app", "worker")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator() -> Draft201909Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft201909Validator.check_schema(schema)
    return Draft201909Validator(schema)


def _errors(validator: Draft201909Validator, document: dict) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _mounts(service: dict) -> dict[str, str]:
    """target path -> source, for short-syntax volume entries."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        mounts[target] = source
    return mounts


def test_compose_file_is_valid_against_the_compose_specification(compose, validator):
    assert _errors(validator, compose) == []


def test_the_schema_check_rejects_a_misspelt_key(compose, validator):
    # proves the validation above has teeth: the schema forbids unknown keys
    broken = json.loads(json.dumps(compose))
    broken["services"]["db"]["healtcheck"] = broken["services"]["db"].pop("healthcheck")
    assert any("healtcheck" in error for error in _errors(validator, broken))


def test_it_has_the_four_services(compose):
    assert set(compose["services"]) == {"db", "migrate", "app", "worker"}


def test_db_is_postgres_with_a_healthcheck_and_a_named_volume(compose):
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres:15")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert not db["healthcheck"].get("disable", False)
    source = _mounts(db)["/var/lib/postgresql/data"]
    assert source in compose["volumes"], "the database lives on a named volume"


def test_migrate_is_one_shot_and_waits_for_a_healthy_database(compose):
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"


def test_app_starts_after_a_successful_migration_and_leaves_webhooks_to_the_worker(compose):
    app = compose["services"]["app"]
    assert app["command"][0] == "serve"
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert _environment(app)["HAVEN_WORKER"] == "off"
    assert any(str(port).endswith(":8000") for port in app["ports"])
    port = app["command"][app["command"].index("--port") + 1]
    assert port == "8000"


def test_worker_runs_the_worker_after_migration(compose):
    worker = compose["services"]["worker"]
    assert worker["command"] == ["worker"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["healthcheck"]["disable"] is True, "the image's HTTP health check is for app"


@pytest.mark.parametrize("name", HAVEN_SERVICES)
def test_haven_services_share_one_image_and_the_evidence_volume(compose, name):
    service = compose["services"][name]
    assert service["image"] == compose["services"]["app"]["image"]
    env = _environment(service)
    assert env["HAVEN_DEV"] == "false"
    assert env["HAVEN_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@db:5432/" in env["HAVEN_DATABASE_URL"]
    evidence = env["HAVEN_EVIDENCE_DIR"]
    assert _mounts(service)[evidence] in compose["volumes"], "evidence lives on a named volume"
    assert service.get("env_file") == ".env"


def test_volumes_for_database_and_evidence_are_declared(compose):
    assert {"db-data", "evidence"} <= set(compose["volumes"])


def test_every_haven_setting_in_the_file_is_one_haven_knows(compose):
    fields = {f"HAVEN_{name.upper()}" for name in Settings.model_fields}
    for name in HAVEN_SERVICES:
        unknown = set(_environment(compose["services"][name])) - fields
        assert not unknown, f"{name} sets settings Haven does not have: {sorted(unknown)}"


def test_every_required_variable_is_in_env_example():
    # ${VAR:?message} stops `docker compose` with that message when .env lacks VAR,
    # so .env.example must show each of them.
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text(encoding="utf-8")))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*(\w+)=", example, flags=re.MULTILINE))
    assert required - listed == set()
