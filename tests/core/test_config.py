"""Settings: safe defaults, and a one-line refusal of a default or weak secret outside
development."""

import secrets

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.core.config import DEFAULT_SECRET_KEY, SettingsError, load_settings
from tests.conftest import TEST_SECRET


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    for name in ["HAVEN_DEV", "HAVEN_SECRET_KEY", "HAVEN_DATABASE_URL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file here


def test_defaults_to_sqlite_under_data(monkeypatch):
    settings = load_settings(dev=True)
    assert settings.database_url == "sqlite:///./data/haven.db"
    assert settings.is_sqlite


@pytest.mark.parametrize("secret", [None, "", DEFAULT_SECRET_KEY])
def test_refuses_a_missing_or_default_secret_outside_development(monkeypatch, secret):
    if secret is not None:
        monkeypatch.setenv("HAVEN_SECRET_KEY", secret)
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("HAVEN_SECRET_KEY is missing or left at its default")


def test_refuses_a_short_secret(monkeypatch):
    monkeypatch.setenv("HAVEN_SECRET_KEY", "short")
    with pytest.raises(SettingsError, match="too short"):
        load_settings()


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        pytest.param("a" * 48, "does not look random", id="one-character"),
        pytest.param(" " * 40, "whitespace", id="spaces"),
        pytest.param("0123456789abcdef" * 3, "repeats a shorter pattern", id="repeated-pattern"),
        pytest.param(("haven-key-" * 5)[:47], "repeats a shorter pattern", id="cut-pattern"),
        pytest.param("a" * 38 + "bcdefghijk", "bits of entropy", id="mostly-one-character"),
        pytest.param(secrets.token_urlsafe(48) + " ", "whitespace", id="trailing-space"),
        pytest.param("\t".join([secrets.token_hex(20)] * 2), "whitespace", id="tab"),
    ],
)
def test_refuses_a_secret_that_is_plainly_not_random(monkeypatch, secret, reason):
    monkeypatch.setenv("HAVEN_SECRET_KEY", secret)
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("HAVEN_SECRET_KEY ") and reason in message
    assert message.endswith("make a random one with `haven generate-secret-key`")


def test_a_generated_secret_is_accepted(monkeypatch):
    runner = CliRunner()
    keys = [runner.invoke(cli, ["generate-secret-key"]).output.strip() for _ in range(2)]
    assert keys[0] != keys[1] and len(keys[0]) >= 64
    for key in keys:
        monkeypatch.setenv("HAVEN_SECRET_KEY", key)
        assert load_settings().secret_key == key


@pytest.mark.parametrize(
    "secret",
    [TEST_SECRET, secrets.token_hex(16), secrets.token_hex(32), secrets.token_urlsafe(24)],
    ids=["tests", "hex-128-bits", "hex-256-bits", "urlsafe-192-bits"],
)
def test_accepts_keys_made_by_the_usual_generators(monkeypatch, secret):
    monkeypatch.setenv("HAVEN_SECRET_KEY", secret)
    assert load_settings().secret_key == secret


def test_development_allows_a_weak_secret(monkeypatch):
    monkeypatch.setenv("HAVEN_SECRET_KEY", "a" * 48)
    assert load_settings(dev=True).secret_key == "a" * 48


def test_development_allows_the_default_secret():
    assert load_settings(dev=True).secure_cookies is False


def test_reads_haven_prefixed_environment(monkeypatch):
    monkeypatch.setenv("HAVEN_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("HAVEN_DATABASE_URL", "postgresql+psycopg://u@h/db")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.secure_cookies is True


def test_bad_numbers_name_the_setting(monkeypatch):
    monkeypatch.setenv("HAVEN_SESSION_IDLE_MINUTES", "0")
    with pytest.raises(SettingsError, match=r"^HAVEN_SESSION_IDLE_MINUTES: "):
        load_settings(dev=True)
