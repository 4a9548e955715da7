"""The `haven` command (also `python -m app`), scripted by IT technicians."""

import getpass
import logging
import os
import secrets
import signal
import sys
import threading
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlmodel import Session

import app.models  # noqa: F401 - every table on the metadata
from app.audit import flows as audit_flows
from app.audit.anchors import anchor_log_path, check_anchors, install_resigned, write_anchor
from app.audit.service import SYSTEM, use_chain_key, verify_chain
from app.auth import flows as auth_flows
from app.auth import service as auth_service
from app.auth.models import ApiTokenCreate, Role, Scope, UserCreate
from app.core.config import Settings, SettingsError
from app.core.db import READING, make_engine
from app.core.errors import DomainError
from app.core.preflight import run_preflight
from app.install import ensure_school

cli = typer.Typer(
    help="Haven: social media and mobile phone safeguarding for schools.",
    pretty_exceptions_enable=False,  # never print local variables (passwords, tokens)
)
audit_cli = typer.Typer(help="The audit trail.")
cli.add_typer(audit_cli, name="audit")


@cli.callback()
def _owner_only() -> None:
    # Everything Haven writes (the SQLite database, evidence, backups, the anchor log) is
    # readable by the user it runs as, and no one else.
    os.umask(0o077)


log = logging.getLogger("haven.cli")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"haven: {message}", err=True)
    raise typer.Exit(code)


def _ready(*, database: bool = True, evidence: bool = True) -> Settings:
    try:
        return run_preflight(database=database, evidence=evidence)
    except SettingsError as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits


def _engine(settings: Settings):
    """An engine on the configured database, chaining audit events with HAVEN_SECRET_KEY."""
    return use_chain_key(make_engine(settings.database_url), settings.secret_key)


def _school_session(settings: Settings):
    engine = _engine(settings)
    session = Session(engine, expire_on_commit=False)
    school = ensure_school(session=session, settings=settings)
    return engine, session, school


@cli.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run on every deploy)."""
    from app.core.migrations import upgrade_to_head

    settings = _ready()
    engine = make_engine(settings.database_url)
    upgrade_to_head(engine, secret_key=settings.secret_key)
    engine.dispose()
    engine, session, school = _school_session(settings)  # the school and its shipped content
    session.commit()
    write_anchor(session=session, evidence_dir=settings.evidence_dir, only_if_moved=True)
    session.close()
    engine.dispose()
    typer.echo(f"haven: database is up to date for {school.name}")


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password again: "):
            fail("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


@cli.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(help="Their school email address")],
    name: Annotated[str, typer.Option(help="Name shown in Haven")],
    role: Annotated[Role, typer.Option(help="What they may do")],
) -> None:
    """Create an account. The password is prompted for, or read from standard input."""
    settings = _ready()
    password = _read_password()
    engine, session, school = _school_session(settings)
    try:
        data = UserCreate(email=email, display_name=name, role=role, password=password)
        user = auth_flows.create_user(session=session, school_id=school.id, data=data, actor=SYSTEM)
        session.commit()
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
    except DomainError as exc:
        fail(exc.detail)
    finally:
        session.close()
        engine.dispose()
    typer.echo(f"haven: created {user.role.value} account {user.email}")


@cli.command("create-token")
def create_token(
    name: Annotated[str, typer.Option(help="Which system will use it")],
    scope: Annotated[list[Scope], typer.Option(help="A scope; repeat for several")],
    expires: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day it works")
    ] = None,
) -> None:
    """Make an API token and print it once."""
    settings = _ready()
    engine, session, school = _school_session(settings)
    expires_at = datetime.combine(expires.date(), time.max, tzinfo=UTC) if expires else None
    try:
        data = ApiTokenCreate(name=name, scopes=scope, expires_at=expires_at)
        raw, _token = auth_service.create_api_token(
            session=session, school_id=school.id, data=data, actor=SYSTEM
        )
        session.commit()
    except ValidationError as exc:
        fail(exc.errors()[0]["msg"])
    except DomainError as exc:
        fail(exc.detail)
    finally:
        session.close()
        engine.dispose()
    typer.echo(raw)


@cli.command("seed-demo")
def seed_demo() -> None:
    """Create a demo school with an account for each role (development only)."""
    from app.demo import seed_demo_school

    settings = _ready()
    if not settings.dev:
        fail("seed-demo only runs with HAVEN_DEV=true: it creates accounts with known passwords")
    engine, session, school = _school_session(settings)
    try:
        accounts = seed_demo_school(session=session, school=school)
        session.commit()
    finally:
        session.close()
        engine.dispose()
    typer.echo(f"Demo school: {school.name}")
    for account in accounts:
        typer.echo(account)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Web worker processes")] = 1,
) -> None:
    """Serve Haven's pages and API."""
    import uvicorn

    settings = _ready()
    _require_migrated(settings)
    # Requests run on a pool of threads, and glibc gives threads malloc arenas of their own,
    # which keep memory a burst of requests once needed: two arenas keep each worker's resident
    # memory lower at no measurable cost. Worker processes read it as they start (the image
    # sets it for a single worker, which is this process).
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    typer.echo(f"haven: serving on http://{host}:{port}")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_level=settings.log_level,
        access_log=False,  # it writes query strings (searches for a pupil): Haven logs its own
    )


def _require_migrated(settings: Settings) -> None:
    from app.core.migrations import current_revision, head_revision

    engine = make_engine(settings.database_url)
    with engine.connect() as connection:
        revision = current_revision(connection)
    engine.dispose()
    if revision != head_revision():
        fail("the database schema is not up to date: run `haven migrate` first")


@cli.command()
def worker() -> None:
    """Run the background worker (periodic jobs) on its own."""
    from app.worker import run_worker

    settings = _ready()
    _require_migrated(settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    engine = _engine(settings)
    typer.echo("haven: worker started")
    run_worker(engine, stop, settings)
    engine.dispose()
    typer.echo("haven: worker stopped")


@cli.command()
def backup(
    to: Annotated[Path, typer.Option("--to", help="Folder to write the backup under")],
) -> None:
    """Write a consistent copy of the database and evidence files, checking every evidence
    file's SHA-256; exit 1, having copied everything, if any is damaged or missing."""
    from app.backup import BackupError, write_backup

    settings = _ready()
    engine = make_engine(settings.database_url)
    try:
        written = write_backup(
            engine=engine,
            evidence_dir=Path(settings.evidence_dir),
            anchor_log=anchor_log_path(settings.evidence_dir),
            target_root=to,
        )
    except (BackupError, OSError) as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    for name, found in written.damaged.items():
        typer.echo(f"haven: evidence file {name} is damaged (SHA-256 {found} differs)", err=True)
    for name in written.missing:
        typer.echo(f"haven: evidence file {name} is missing from HAVEN_EVIDENCE_DIR", err=True)
    typer.echo(f"haven: backup written to {written.path}")
    if written.damaged or written.missing:
        fail(
            f"{len(written.damaged) + len(written.missing)} evidence files are damaged or "
            "missing: put them back from an earlier backup",
            code=1,
        )


@cli.command()
def restore(
    source: Annotated[Path, typer.Option("--from", help="A folder written by `haven backup`")],
) -> None:
    """Load a backup into a new, empty database (it creates the schema itself)."""
    from app.backup import BackupError, restore_backup

    settings = _ready()
    engine = make_engine(settings.database_url)
    try:
        restored = restore_backup(
            engine=engine,
            backup=source,
            evidence_dir=Path(settings.evidence_dir),
            anchor_log=anchor_log_path(settings.evidence_dir),
        )
    except BackupError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    for name in restored.damaged:
        typer.echo(f"haven: evidence file {name} was already damaged when backed up", err=True)
    if restored.replaced_anchor_log:
        typer.echo(
            f"haven: the anchor log that was there is kept as {restored.replaced_anchor_log}",
            err=True,
        )
    typer.echo(f"haven: restored {sum(restored.tables.values())} rows from {source}")


@cli.command("generate-secret-key")
def generate_secret_key() -> None:
    """Print a new random value for HAVEN_SECRET_KEY."""
    typer.echo(secrets.token_urlsafe(48))


def _read_secret(prompt: str) -> str:
    """A secret typed at the terminal without echo, or the first line of standard input."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Check that no audit event was changed or removed: every event's keyed hash, and every
    anchor in the anchor log against the chain."""
    settings = _ready(evidence=False)
    engine = _engine(settings)
    with Session(engine, execution_options={READING: True}) as session:
        # The anchors first: an anchor the worker writes meanwhile names an event already
        # committed when the chain is then read.
        anchored, anchor_problems = check_anchors(
            session=session, evidence_dir=settings.evidence_dir
        )
        checked, problems = verify_chain(session=session)
    engine.dispose()
    for problem in problems:
        typer.echo(f"haven: audit event {problem.seq} {problem.reason}", err=True)
    for message in anchor_problems:
        typer.echo(f"haven: {message}", err=True)
    if problems or anchor_problems:
        raise typer.Exit(1)
    if checked and not anchored:
        typer.echo(
            f"haven: no anchor in {anchor_log_path(settings.evidence_dir)} yet: the worker "
            "writes one within minutes, `haven audit anchor` now",
            err=True,
        )
    typer.echo(f"haven: audit trail intact ({checked} events), {anchored} anchors hold")


@audit_cli.command("anchor")
def audit_anchor() -> None:
    """Append the audit chain's signed head to the anchor log now."""
    settings = _ready()
    engine = _engine(settings)
    with Session(engine, execution_options={READING: True}) as session:
        anchor = write_anchor(session=session, evidence_dir=settings.evidence_dir)
    engine.dispose()
    if anchor is None:
        typer.echo("haven: the audit trail is empty: nothing to anchor yet")
        return
    typer.echo(f"haven: anchored audit event {anchor.seq} at {anchor.when}")


@cli.command("rotate-secret-key")
def rotate_secret_key() -> None:
    """Re-key the audit trail and re-seal the TOTP seeds under the HAVEN_SECRET_KEY configured
    now. The old key is read from standard input (prompted for at a terminal). Stop Haven's
    web server and worker first."""
    settings = _ready()
    old_key = _read_secret("Old HAVEN_SECRET_KEY: ")
    if not old_key:
        fail("give the old HAVEN_SECRET_KEY on standard input")
    engine = _engine(settings)
    rotation = None
    with Session(engine, expire_on_commit=False) as session:
        try:
            rotation = audit_flows.rotate_secret_key(
                session=session,
                evidence_dir=settings.evidence_dir,
                old_secret_key=old_key,
                new_secret_key=settings.secret_key,
            )
            session.commit()
        except Exception as exc:
            session.rollback()
            if rotation is not None and rotation.staged_log is not None:
                rotation.staged_log.unlink(missing_ok=True)
            if not isinstance(exc, DomainError):
                raise
            fail(f"{exc.detail}; nothing was changed")
        kept = install_resigned(rotation.staged_log) if rotation.staged_log else None
        write_anchor(session=session, evidence_dir=settings.evidence_dir)
    engine.dispose()
    typer.echo(
        f"haven: re-keyed {rotation.events} audit events and re-sealed {rotation.seeds} TOTP "
        "seeds under the new HAVEN_SECRET_KEY"
    )
    if kept is not None:
        typer.echo(f"haven: the anchor log is signed with the new key; the old one is {kept}")


def main() -> None:
    cli()
