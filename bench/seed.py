"""Bulk data for the benchmark: a school with its people and accounts, then incidents by the
hundred thousand, with their chronology, people involved, playbooks and audit trail.

Rows are written with PostgreSQL's COPY, or with SQLite's executemany in one transaction, never
through the ORM one at a time: a million incidents (and about three million rows beside them)
take minutes. The audit rows carry a valid hash chain, so `haven audit verify` still passes.
"""

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pyotp
import sqlalchemy as sa
from sqlmodel import Session, select

from app.audit.service import GENESIS_HASH, SYSTEM, chain_key, event_hash
from app.auth import flows as auth_flows
from app.auth import service as auth_service
from app.auth.models import ApiTokenCreate, Role, Scope, User, UserCreate
from app.checklists import service as checklists_service
from app.checklists.models import ChecklistPurpose, ChecklistTemplate
from app.core.config import Settings
from app.core.security import hash_password
from app.core.types import utcnow
from app.incidents.library import PLAYBOOK_KEY
from app.install import ensure_school
from app.people import flows as people_flows
from app.people.models import PeopleSync, Person, PersonKind
from app.webhooks import signing
from app.webhooks.models import WebhookEndpoint
from bench.roster_sync import roster

PASSWORD = "bench-password-0123456789"
ROSTER_SIZE = 2000
EXTRA_STAFF = 60  # accounts beside the ones signed in, so the user lists are a school's size
SPACING = timedelta(seconds=90)  # a seeded incident every 90 s back in time: 1M over ~3 years

TITLES = [
    "Abusive video about a teacher",
    "Fake account impersonating the head",
    "Group chat sharing a pupil's photo",
    "Petition against a member of staff",
    "Threatening messages to a Year 9 pupil",
    "Phone used to film in a lesson",
    "Rating site post about a teacher",
    "Parent's post naming a pupil",
]
DESCRIPTIONS = [
    "Reported by a form tutor after pupils mentioned it at registration. Screenshots taken "
    "with the date and time; the post is still up.",
    "A parent emailed the office with a link. The account uses the school logo and posts "
    "about staff by name.",
    "Shared in a class group chat overnight; several pupils saw it before it was deleted.",
]
PLATFORMS = ["tiktok", "instagram", "snapchat", "whatsapp", "facebook", "x", "youtube", "other"]
CATEGORIES = ["malicious_post", "harassment", "image_sharing", "impersonation", "phone_misuse"]
OFFENDERS = ["pupil", "pupil", "parent_carer", "unknown"]
TARGETS = ["staff", "pupil", "pupil", "school"]
FLAGS = ['["abusive"]', "[]", "[]", '["threatening"]', '["sexist"]', "[]"]
SEVERITIES = ["low"] * 50 + ["medium"] * 30 + ["high"] * 15 + ["critical"] * 5


@dataclass
class School:
    """What the benchmark needs to know about the school it seeded."""

    id: int
    anchor: datetime  # seeded incidents are reported at anchor - n * SPACING
    dsl_id: int
    dsl_email: str
    dsl_totp_secret: str
    staff_email: str
    reporter_ids: list[int]
    pupil_ids: list[int]
    playbook_template_id: int
    api_token: str
    roster: list[dict] = field(repr=False)
    incidents: int = 0  # seeded so far


# The school, its accounts, roster, token and webhook endpoint -------------------------------------


def _user(session: Session, school_id: int, email: str, name: str, role: Role) -> User:
    data = UserCreate(email=email, display_name=name, role=role, password=PASSWORD)
    return auth_flows.create_user(session=session, school_id=school_id, data=data, actor=SYSTEM)


def prepare_school(engine: sa.Engine, receiver_url: str, secret_key: str) -> School:
    """A migrated, empty database becomes a school ready for the measured requests."""
    with Session(engine, expire_on_commit=False) as session:
        school = ensure_school(session=session, settings=Settings(dev=True))
        people = roster(ROSTER_SIZE, "MIS")
        people_flows.sync_roster(
            session=session, school_id=school.id, data=PeopleSync(people=people), actor=SYSTEM
        )
        dsl = _user(session, school.id, "dsl@bench.example", "Bench DSL", Role.dsl)
        dsl_seed = pyotp.random_base32()
        auth_service.set_totp_seed(user=dsl, seed=dsl_seed, secret_key=secret_key)
        dsl.totp_enabled_at = utcnow()
        deputy = _user(session, school.id, "deputy@bench.example", "Bench Deputy", Role.deputy_dsl)
        staff = _user(session, school.id, "staff@bench.example", "Bench Teacher", Role.staff)
        for template in session.exec(
            select(ChecklistTemplate).where(
                ChecklistTemplate.school_id == school.id,
                ChecklistTemplate.purpose == ChecklistPurpose.staff,
                ChecklistTemplate.assign_to_new_staff.is_(False),
            )
        ).all():
            checklists_service.assign(
                session=session,
                school_id=school.id,
                template_id=template.id,
                user_ids=[staff.id],
                roles=[],
                due_at=utcnow() + timedelta(days=14),
                actor=SYSTEM,
            )
        password_hash = hash_password(PASSWORD)
        now = utcnow()
        session.add_all(
            User(
                school_id=school.id,
                email=f"teacher{n}@bench.example",
                display_name=f"Teacher {n:03d}",
                role=Role.staff,
                password_hash=password_hash,
                password_changed_at=now,
            )
            for n in range(EXTRA_STAFF)
        )
        raw_token, _ = auth_service.create_api_token(
            session=session,
            school_id=school.id,
            actor=SYSTEM,
            data=ApiTokenCreate(
                name="bench",
                scopes=[
                    Scope.incidents_read,
                    Scope.incidents_write,
                    Scope.people_read,
                    Scope.people_write,
                ],
            ),
        )
        session.add(
            WebhookEndpoint(
                school_id=school.id,
                url=receiver_url,
                description="DSL inbox relay",
                format="standard",
                events=["incident.escalated"],
                secret=signing.new_secret(),
            )
        )
        session.commit()
        playbook = session.exec(
            select(ChecklistTemplate.id).where(
                ChecklistTemplate.school_id == school.id, ChecklistTemplate.key == PLAYBOOK_KEY
            )
        ).one()
        staff_ids = session.exec(
            select(User.id).where(User.school_id == school.id, User.role == Role.staff)
        ).all()
        pupils = session.exec(
            select(Person.id).where(Person.school_id == school.id, Person.kind == PersonKind.pupil)
        ).all()
        return School(
            id=school.id,
            anchor=utcnow().replace(microsecond=0) - timedelta(minutes=10),
            dsl_id=dsl.id,
            dsl_email=dsl.email,
            dsl_totp_secret=dsl_seed,
            staff_email=staff.email,
            reporter_ids=[*staff_ids, deputy.id],
            pupil_ids=list(pupils),
            playbook_template_id=playbook,
            api_token=raw_token,
            roster=people,
        )


# Bulk writing ---------------------------------------------------------------------------------


def _sqlite_value(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


class BulkWriter:
    """COPY on PostgreSQL; executemany in one transaction on SQLite."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.connection = engine.raw_connection()
        if self.postgres:
            # Triggers (foreign-key checks among them) off for this connection: the rows are
            # made consistent here, and the one derived table is filled by `count_statuses`.
            cursor = self.connection.cursor()
            cursor.execute("SET session_replication_role = replica")
            cursor.close()
        else:
            self.connection.execute("PRAGMA synchronous=OFF")  # this connection only
            self.connection.execute("BEGIN")

    def write(self, table: str, columns: list[str], rows: Iterable[tuple]) -> None:
        names = ", ".join(f'"{c}"' for c in columns)
        cursor = self.connection.cursor()
        if self.postgres:
            with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(
                f'INSERT INTO "{table}" ({names}) VALUES ({marks})',  # noqa: S608 - our names
                (tuple(_sqlite_value(v) for v in row) for row in rows),
            )
        cursor.close()

    def scalar(self, sql: str):
        cursor = self.connection.cursor()
        cursor.execute(sql)
        (value,) = cursor.fetchone()
        cursor.close()
        return value

    def count_statuses(self, first_incident_id: int) -> None:
        """What the status trigger would have logged for the incidents from this id on."""
        if not self.postgres:
            return  # SQLite's triggers ran
        cursor = self.connection.cursor()
        cursor.execute(
            "INSERT INTO incident_status_change (school_id, status, change) "
            "SELECT school_id, status, count(*) FROM incident WHERE id >= %(first)s "
            "GROUP BY school_id, status",
            {"first": first_incident_id},
        )
        cursor.close()

    def finish(self) -> None:
        if self.postgres:
            cursor = self.connection.cursor()
            for table in SEQUENCED:
                last = f'SELECT max(id) FROM "{table}"'  # noqa: S608 - our own table names
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence(%(t)s, 'id'), ({last}))", {"t": table}
                )
            cursor.close()
            self.connection.commit()
            self.connection.close()
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
                # Written out now, not by the checkpointer while the next measures run.
                conn.exec_driver_sql("CHECKPOINT")
        else:
            self.connection.execute("COMMIT")
            self.connection.execute("ANALYZE")
            self.connection.close()


SEQUENCED = ["incident", "timeline_entry", "incident_person", "checklist_run", "audit_event"]


def _next_id(writer: BulkWriter, table: str) -> int:
    return (writer.scalar(f'SELECT max(id) FROM "{table}"') or 0) + 1  # noqa: S608


# Incidents --------------------------------------------------------------------------------------


def _status(n: int) -> str:
    if n < 60:  # the newest are still being worked on
        return ("open", "in_progress", "escalated")[n % 3]
    r = (n * 7919) % 1000
    if r < 4:
        return "open"
    if r < 10:
        return "in_progress"
    if r < 14:
        return "escalated"
    return "resolved" if r < 100 else "closed"


@dataclass
class _Plan:
    """Where each seeded incident's rows go, decided once so every table agrees."""

    incident_id: int
    n: int
    reported_at: datetime
    status: str
    closed_at: datetime | None
    reporter_id: int


def add_incidents(engine: sa.Engine, school: School, count: int, log=print) -> float:
    """Add `count` older incidents after those seeded before; returns the seconds it took."""
    started = time.perf_counter()
    writer = BulkWriter(engine)
    incident_id = first_incident_id = _next_id(writer, "incident")
    entry_id = _next_id(writer, "timeline_entry")
    chain, key = _chain_end(writer), chain_key(engine)
    start, stop = school.incidents, school.incidents + count
    for chunk in range(start, stop, CHUNK):
        plans = []
        for n in range(chunk, min(chunk + CHUNK, stop)):
            plans.append(_plan(school, n, incident_id))
            incident_id += 1
        writer.write("incident", INCIDENT_COLUMNS, (_incident_row(school, p) for p in plans))
        writer.write(
            "incident_person", PERSON_COLUMNS, (row for p in plans for row in _people(school, p))
        )
        writer.write("checklist_run", RUN_COLUMNS, (_playbook(school, p) for p in plans))
        entries = _entries(school, plans, entry_id)
        entry_id += len(entries)
        writer.write("timeline_entry", ENTRY_COLUMNS, (e[:-2] for e in entries))
        writer.write("audit_event", AUDIT_COLUMNS, _audit_rows(chain, school, entries, key))
        if stop - start > CHUNK:
            done = min(chunk + CHUNK, stop) - start
            log(f"  {done:,} of {count:,} incidents ({time.perf_counter() - started:.0f} s)")
    writer.count_statuses(first_incident_id)
    writer.finish()
    school.incidents = stop
    return time.perf_counter() - started


CHUNK = 100_000


def _plan(school: School, n: int, incident_id: int) -> _Plan:
    reported_at = school.anchor - n * SPACING
    status = _status(n)
    closed_at = None
    if status in ("resolved", "closed"):
        closed_at = min(reported_at + timedelta(hours=2 + n % 96), school.anchor)
    return _Plan(
        incident_id=incident_id,
        n=n,
        reported_at=reported_at,
        status=status,
        closed_at=closed_at,
        reporter_id=school.reporter_ids[n % len(school.reporter_ids)],
    )


INCIDENT_COLUMNS = [
    "id",
    "school_id",
    "reference",
    "title",
    "description",
    "occurred_at",
    "reported_at",
    "reported_by_id",
    "platform",
    "category",
    "offender_type",
    "target_type",
    "content_flags",
    "suspected_criminal_offence",
    "removal_requested",
    "removal_refused",
    "lado_harm_test",
    "status",
    "severity",
    "assigned_to_id",
    "outcome",
    "closed_at",
    "seen_by_dsl_at",
    "first_action_at",
    "created_at",
    "updated_at",
]


def _incident_row(school: School, p: _Plan) -> tuple:
    n = p.n
    seen = p.reported_at + timedelta(minutes=20) if p.status != "open" else None
    return (
        p.incident_id,
        school.id,
        # Seeded references run from 1,000,000 so they never meet the ones Haven gives out.
        f"INC-{p.reported_at.year}-{1_000_000 + n}",
        TITLES[n % len(TITLES)],
        DESCRIPTIONS[n % len(DESCRIPTIONS)],
        p.reported_at - timedelta(minutes=30 + n % 600),
        p.reported_at,
        p.reporter_id,
        PLATFORMS[(n * 31) % len(PLATFORMS)],
        CATEGORIES[(n * 17) % len(CATEGORIES)],
        OFFENDERS[(n * 13) % len(OFFENDERS)],
        TARGETS[(n * 7) % len(TARGETS)],
        FLAGS[(n * 11) % len(FLAGS)],
        False,
        n % 4 == 0,
        False,
        None,
        p.status,
        SEVERITIES[(n * 104729) % len(SEVERITIES)],
        school.dsl_id if p.status != "open" else None,
        "Content removed by the platform; parents met." if p.closed_at else "",
        p.closed_at if p.status == "closed" else None,
        seen and min(seen, school.anchor),
        p.closed_at,  # the DSL's status change (see _entries) is the first action
        p.reported_at,
        p.closed_at or p.reported_at,
    )


PERSON_COLUMNS = ["incident_id", "person_id", "label", "role", "added_at"]


def _people(school: School, p: _Plan) -> Iterator[tuple]:
    pupil = school.pupil_ids[(p.n * 31) % len(school.pupil_ids)]
    yield (p.incident_id, pupil, "", "subject" if p.n % 2 else "victim", p.reported_at)
    if p.n % 3 == 0:
        yield (p.incident_id, None, "A parent in the group chat", "witness", p.reported_at)


RUN_COLUMNS = [
    "school_id",
    "template_id",
    "incident_id",
    "reason",
    "created_at",
    "completed_at",
    "completed_by_id",
    "updated_at",
]


def _playbook(school: School, p: _Plan) -> tuple:
    done = p.closed_at if p.status == "closed" else None
    return (
        school.id,
        school.playbook_template_id,
        p.incident_id,
        "incident",
        p.reported_at,
        done,
        school.dsl_id if done else None,
        done or p.reported_at,
    )


ENTRY_COLUMNS = [
    "id",
    "incident_id",
    "kind",
    "text",
    "rationale",
    "actor_user_id",
    "created_at",
    "detail",
]


def _entries(school: School, plans: list[_Plan], first_id: int) -> list[tuple]:
    """Timeline rows, each followed by (its audit action, its actor) for the audit trail."""
    rows = []
    next_id = first_id
    for p in plans:
        rows.append(
            (
                next_id,
                p.incident_id,
                "reported",
                "Reported.",
                "",
                p.reporter_id,
                p.reported_at,
                "{}",
                "incident.reported",
                p.reporter_id,
            )
        )
        next_id += 1
        if p.closed_at is not None:
            status = p.status
            text = (
                "Closed. Outcome: Content removed by the platform; parents met."
                if status == "closed"
                else "Status changed to resolved."
            )
            detail = json.dumps({"status": status})
            rows.append(
                (
                    next_id,
                    p.incident_id,
                    "status_change",
                    text,
                    "",
                    school.dsl_id,
                    p.closed_at,
                    detail,
                    "incident.status_change",
                    school.dsl_id,
                )
            )
            next_id += 1
    return rows


AUDIT_COLUMNS = [
    "seq",
    "school_id",
    "occurred_at",
    "actor_user_id",
    "action",
    "entity_type",
    "entity_id",
    "request_id",
    "ip_address",
    "detail",
    "prev_hash",
    "hash",
]


def _chain_end(writer: BulkWriter) -> list:
    """[seq, hash] of the last audit event: where the seeded events chain on."""
    cursor = writer.connection.cursor()
    cursor.execute("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")
    last = cursor.fetchone()
    cursor.close()
    return [last[0], last[1]] if last else [0, GENESIS_HASH]


def _audit_rows(
    chain: list, school: School, entries: list[tuple], secret_key: str
) -> Iterator[tuple]:
    """One audit event per chronology entry, as Haven writes them, chained onto the last one."""
    seq, prev_hash = chain
    for entry in entries:
        seq += 1
        event = SimpleNamespace(
            seq=seq,
            school_id=school.id,
            occurred_at=entry[6].replace(microsecond=0),
            actor_user_id=entry[9],
            actor_token_id=None,
            action=entry[8],
            entity_type="incident",
            entity_id=str(entry[1]),
            request_id="",
            ip_address="",
            detail={"entry": entry[0]},
            prev_hash=prev_hash,
        )
        hashed = event_hash(event, secret_key)
        yield (
            seq,
            school.id,
            event.occurred_at,
            event.actor_user_id,
            event.action,
            "incident",
            event.entity_id,
            "",
            "",
            json.dumps(event.detail),
            prev_hash,
            hashed,
        )
        prev_hash = hashed
        chain[:] = [seq, prev_hash]
