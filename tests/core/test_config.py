"""Settings: safe defaults, and a one-line refusal of a default secret outside development."""

import pytest

from app.core.config import DEFAULT_SECRET_KEY, SettingsError, load_settings


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


def test_development_allows_the_default_secret():
    assert load_settings(dev=True).secure_cookies is False


def test_reads_haven_prefixed_environment(monkeypatch):
    monkeypatch.setenv("HAVEN_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("HAVEN_DATABASE_URL", "postgresql+psycopg://u@h/db")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.secure_cookies is True


def test_bad_numbers_name_the_setting(monkeypatch):
    monkeypatch.setenv("HAVEN_SESSION_IDLE_MINUTES", "0")
    with pytest.raises(SettingsError, match=r"^HAVEN_SESSION_IDLE_MINUTES: "):
        load_settings(dev=True)
