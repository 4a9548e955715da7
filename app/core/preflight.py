"""Checks each `haven` command makes before it starts; a failure is one line saying what to fix."""

import tempfile
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.core.config import Settings, SettingsError, load_settings
from app.core.db import make_engine


def checked_settings() -> Settings:
    """Settings, or SettingsError with the one line to show."""
    return load_settings()


def check_evidence_dir(settings: Settings) -> None:
    folder = Path(settings.evidence_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SettingsError(
            f"HAVEN_EVIDENCE_DIR {folder} is not writable ({reason}): give the Haven user write "
            "access or point HAVEN_EVIDENCE_DIR at a writable folder"
        ) from None


def check_database(settings: Settings) -> None:
    engine = make_engine(settings.database_url, pool_pre_ping=False)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
        raise SettingsError(
            f"the database at HAVEN_DATABASE_URL cannot be reached ({reason}): check that it is "
            "running and that the URL, user and password are right"
        ) from None
    finally:
        engine.dispose()


def run_preflight(*, database: bool = True, evidence: bool = True) -> Settings:
    settings = checked_settings()
    if evidence:
        check_evidence_dir(settings)
    if database:
        check_database(settings)
    return settings
