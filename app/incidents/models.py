"""Incidents, the people involved, evidence and the chronology (timeline). Names are API."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, StrictBool, field_validator
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from app.core.types import JsonRowId, Timestamp, UTCDateTime, enum_type, utcnow


class Platform(StrEnum):
    tiktok = "tiktok"
    facebook = "facebook"
    instagram = "instagram"
    snapchat = "snapchat"
    x = "x"
    youtube = "youtube"
    whatsapp = "whatsapp"
    rate_my_teacher = "rate_my_teacher"
    ask_fm = "ask_fm"
    tumblr = "tumblr"
    other = "other"
    none = "none"


class Category(StrEnum):
    malicious_post = "malicious_post"
    online_petition = "online_petition"
    allegation = "allegation"
    harassment = "harassment"
    impersonation = "impersonation"
    image_sharing = "image_sharing"
    phone_misuse = "phone_misuse"
    staff_conduct = "staff_conduct"
    other = "other"


class OffenderType(StrEnum):
    pupil = "pupil"
    staff = "staff"
    parent_carer = "parent_carer"
    other_adult = "other_adult"
    unknown = "unknown"


class TargetType(StrEnum):
    staff = "staff"
    school_leader = "school_leader"
    pupil = "pupil"
    school = "school"
    other = "other"


class ContentFlag(StrEnum):
    sexual = "sexual"
    sexist = "sexist"
    threatening = "threatening"
    abusive = "abusive"
    hate = "hate"
    indecent_image = "indecent_image"


class IncidentStatus(StrEnum):
    open = "open"
    in_progress = "in_progress"
    escalated = "escalated"
    resolved = "resolved"
    closed = "closed"


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class InvolvementRole(StrEnum):
    victim = "victim"
    subject = "subject"
    witness = "witness"


class TimelineKind(StrEnum):
    reported = "reported"
    note = "note"
    decision = "decision"
    contact = "contact"
    playbook_step = "playbook_step"
    status_change = "status_change"
    assignment = "assignment"
    evidence = "evidence"
    removal = "removal"
    escalation = "escalation"
    harm_test = "harm_test"
    export = "export"


# The first action on an incident is the first chronology entry a person (a signed-in user, not
# an API token) wrote after the report, of a kind that is someone doing something about it.
# Left out: the report itself; escalations and their notices, which the rules write the moment
# an incident is saved; evidence, which usually comes with the report from the person reporting;
# and exports, which copy the record without acting on it.
FIRST_ACTION_KINDS = frozenset(
    {
        TimelineKind.note,
        TimelineKind.decision,
        TimelineKind.contact,
        TimelineKind.playbook_step,
        TimelineKind.status_change,
        TimelineKind.assignment,
        TimelineKind.removal,
        TimelineKind.harm_test,
    }
)


class WrittenEntryKind(StrEnum):
    """The timeline entries people (and the MIS) write; the others Haven writes itself."""

    note = "note"
    decision = "decision"
    contact = "contact"


class ContactWith(StrEnum):
    police = "police"
    lado = "lado"
    posh = "posh"
    platform = "platform"
    parent_carer = "parent_carer"
    other = "other"


class LadoHarmTest(BaseModel):
    """The four questions for allegations about adults who work with children (KCSIE)."""

    model_config = ConfigDict(extra="forbid")

    harmed_child: StrictBool = False  # has harmed, or may have harmed, a child
    criminal_offence: StrictBool = False  # possibly committed a criminal offence about a child
    risk_to_children: StrictBool = False  # behaved in a way that indicates a risk to children
    unsuitable: StrictBool = False  # behaved in a way that suggests unsuitability to work with them

    @property
    def any_yes(self) -> bool:
        return any(
            (self.harmed_child, self.criminal_offence, self.risk_to_children, self.unsuitable)
        )


LADO_QUESTIONS = {
    "harmed_child": "Has the adult harmed a child, or may they have harmed one?",
    "criminal_offence": "May the adult have committed a criminal offence against or about a child?",
    "risk_to_children": "Has the adult behaved towards children in a way that suggests a risk?",
    "unsuitable": "Does their behaviour suggest they may be unsuitable to work with children?",
}


class Incident(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("school_id", "reference"),
        sa.Index("ix_incident_queue", "school_id", "status", "reported_at", "id"),
        sa.Index("ix_incident_school_id_reported_at_id", "school_id", "reported_at", "id"),
        sa.Index("ix_incident_school_id_updated_at_id", "school_id", "updated_at", "id"),
        # The dashboard: open incidents by severity, and incidents closed in a period.
        sa.Index("ix_incident_school_id_status_severity", "school_id", "status", "severity"),
        sa.Index("ix_incident_school_id_closed_at", "school_id", "closed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id")
    reference: str = Field(max_length=20)
    title: str = Field(max_length=200)
    description: str = Field(max_length=10000)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    reported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    reported_by_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    platform: Platform = Field(sa_type=enum_type(Platform))
    category: Category = Field(sa_type=enum_type(Category))
    offender_type: OffenderType = Field(sa_type=enum_type(OffenderType))
    target_type: TargetType = Field(sa_type=enum_type(TargetType))
    content_flags: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    suspected_criminal_offence: bool = False
    removal_requested: bool = False
    removal_refused: bool = False
    lado_harm_test: dict | None = Field(default=None, sa_type=sa.JSON)
    status: IncidentStatus = Field(default=IncidentStatus.open, sa_type=enum_type(IncidentStatus))
    severity: Severity = Field(default=Severity.low, sa_type=enum_type(Severity))
    assigned_to_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    outcome: str = Field(default="", max_length=4000)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    seen_by_dsl_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the first action (FIRST_ACTION_KINDS) was written: the dashboard's response time.
    first_action_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IncidentPerson(SQLModel, table=True):
    __tablename__ = "incident_person"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    label: str = Field(default="", max_length=200, description="Who, when not on the roster")
    role: InvolvementRole = Field(sa_type=enum_type(InvolvementRole))
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Evidence(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    storage_name: str | None = Field(default=None, max_length=80)
    sha256: str | None = Field(default=None, max_length=64)
    content_type: str | None = Field(default=None, max_length=40)
    size: int | None = None
    captured_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    uploaded_by_id: int | None = Field(default=None, foreign_key="user.id")
    uploaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    note: str = Field(
        default="", max_length=4000, description="Context, or the written description"
    )

    @property
    def is_description_only(self) -> bool:
        return self.storage_name is None


class TimelineEntry(SQLModel, table=True):
    """The chronology of an incident: appended to, never changed."""

    __tablename__ = "timeline_entry"
    __table_args__ = (
        # An incident's entries in order: its chronology, and its first action (the dashboard).
        sa.Index("ix_timeline_entry_incident_id_created_at", "incident_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    kind: TimelineKind = Field(sa_type=enum_type(TimelineKind))
    text: str = Field(max_length=10000)
    rationale: str = Field(default="", max_length=10000)
    contact_with: ContactWith | None = Field(default=None, sa_type=enum_type(ContactWith))
    actor_user_id: int | None = Field(default=None, foreign_key="user.id")
    actor_token_id: int | None = Field(default=None, foreign_key="api_token.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    detail: dict = Field(default_factory=dict, sa_type=sa.JSON)


class IncidentStatusChange(SQLModel, table=True):
    """+1 when an incident takes a status, -1 when it leaves it: the sum per status is how many
    of a school's incidents have it, read from a few rows instead of every incident. Written by
    database triggers on `incident` (migration 0013), whatever writes the incidents; writers only
    append, so concurrent reports never wait for one another here, and the worker folds each
    school's rows into one per status (`fold_status_changes`). Derived, so left out of backups
    and rebuilt by the same triggers when a backup is restored."""

    __tablename__ = "incident_status_change"
    __table_args__ = (
        sa.Index(
            "ix_incident_status_change_school_id_status_change", "school_id", "status", "change"
        ),
        {"info": {"derived": True}},
    )

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    )
    school_id: int = Field(foreign_key="school.id")
    status: IncidentStatus = Field(sa_type=enum_type(IncidentStatus))
    change: int


class IncidentCounter(SQLModel, table=True):
    """The last reference number given in a year, per school (INC-YYYY-NNNN)."""

    __tablename__ = "incident_counter"

    school_id: int = Field(foreign_key="school.id", primary_key=True)
    year: int = Field(primary_key=True)
    last: int = 0


# API schemas -------------------------------------------------------------------------------


def _no_future(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-11-24T18:30:00Z")
    if value > utcnow():
        raise ValueError("cannot be in the future")
    return value


class InvolvedPersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: JsonRowId | None = None
    label: str = Field(default="", max_length=200)
    role: InvolvementRole


class IncidentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Abusive video about a teacher",
                    "description": "A TikTok video mocking Mr Example, posted last night and "
                    "shared in a Year 9 group chat.",
                    "occurred_at": "2026-11-24T18:30:00Z",
                    "platform": "tiktok",
                    "category": "malicious_post",
                    "offender_type": "pupil",
                    "target_type": "staff",
                    "content_flags": ["abusive"],
                    "removal_requested": True,
                    "people": [{"label": "Mr Example", "role": "victim"}],
                }
            ]
        },
    )

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=10000)
    occurred_at: Timestamp = Field(
        description="When it happened: a date and time with its offset, not in the future"
    )
    platform: Platform
    category: Category
    offender_type: OffenderType
    target_type: TargetType
    content_flags: list[ContentFlag] = Field(default_factory=list, max_length=6)
    suspected_criminal_offence: StrictBool = False
    removal_requested: StrictBool = False
    removal_refused: StrictBool = False
    lado_harm_test: LadoHarmTest | None = None
    people: list[InvolvedPersonIn] = Field(default_factory=list, max_length=50)

    _check_occurred = field_validator("occurred_at")(_no_future)


def _update_schema(schema: dict) -> None:
    # A field left out is left as it is; those that cannot be empty may not be sent as null.
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]
    schema["examples"] = [
        {"status": "in_progress", "severity": "high", "assigned_to": 3},
        {"status": "closed", "outcome": "Post removed by the platform; parents met."},
    ]


class IncidentUpdate(BaseModel):
    """A change: only the fields sent change. Only `assigned_to` (unassign), `lado_harm_test`
    (not answered) and `reason` may be null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_update_schema)

    title: str = Field(default=None, min_length=1, max_length=200)
    description: str = Field(default=None, min_length=1, max_length=10000)
    platform: Platform = None
    category: Category = None
    offender_type: OffenderType = None
    target_type: TargetType = None
    content_flags: list[ContentFlag] = Field(default=None, max_length=6)
    suspected_criminal_offence: StrictBool = None
    removal_requested: StrictBool = None
    removal_refused: StrictBool = None
    lado_harm_test: LadoHarmTest | None = None
    status: IncidentStatus = None
    severity: Severity = None
    assigned_to: JsonRowId | None = None
    outcome: str = Field(default=None, max_length=4000)
    reason: str | None = Field(
        default=None, max_length=4000, description="Why: needed to reopen a closed incident"
    )


class InvolvedPersonPublic(BaseModel):
    person_id: int | None
    label: str
    role: InvolvementRole


class IncidentPublic(BaseModel):
    id: int
    reference: str
    title: str
    description: str
    occurred_at: datetime
    reported_at: datetime
    reported_by: int | None
    platform: Platform
    category: Category
    offender_type: OffenderType
    target_type: TargetType
    content_flags: list[ContentFlag]
    suspected_criminal_offence: bool
    removal_requested: bool
    removal_refused: bool
    lado_harm_test: LadoHarmTest | None
    status: IncidentStatus
    severity: Severity
    assigned_to: int | None
    outcome: str
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    people: list[InvolvedPersonPublic] = []


class TimelineEntryIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            # What the service checks, so that clients (and API tests) can know it beforehand.
            "allOf": [
                {
                    "if": {"properties": {"kind": {"const": "decision"}}},
                    "then": {
                        "required": ["rationale"],
                        "properties": {"rationale": {"pattern": r"\S"}},
                    },
                },
                {
                    "if": {"properties": {"kind": {"const": "contact"}}},
                    "then": {
                        "required": ["contact_with"],
                        "properties": {"contact_with": {"not": {"type": "null"}}},
                    },
                },
            ],
            "examples": [
                {
                    "kind": "decision",
                    "text": "Not referred to the LADO.",
                    "rationale": "No answer of the harm test is yes; handled as a conduct matter.",
                },
                {
                    "kind": "contact",
                    "text": "Reported the video through TikTok's form.",
                    "contact_with": "platform",
                },
            ],
        },
    )

    kind: WrittenEntryKind
    text: str = PydanticField(min_length=1, max_length=10000, pattern=r"\S")
    rationale: str = Field(default="", max_length=10000, description="Why: required for a decision")
    contact_with: ContactWith | None = Field(
        default=None, description="Who was contacted: required for a contact"
    )


class TimelineEntryPublic(BaseModel):
    id: int
    kind: TimelineKind
    text: str
    rationale: str
    contact_with: ContactWith | None
    actor_user_id: int | None
    actor_token_id: int | None
    created_at: datetime
    detail: dict


class EvidencePublic(BaseModel):
    id: int
    sha256: str | None
    content_type: str | None
    size: int | None
    captured_at: datetime | None
    uploaded_at: datetime
    note: str


class ContactKind(StrEnum):
    helpline = "helpline"
    platform = "platform"
    police = "police"
    lado = "lado"
    other = "other"


class Contact(SQLModel, table=True):
    """The directory of helplines, platform reporting routes and agencies the DSL contacts."""

    __table_args__ = (sa.UniqueConstraint("school_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    key: str = Field(max_length=60)
    name: str = Field(max_length=120)
    kind: ContactKind = Field(sa_type=enum_type(ContactKind))
    phone: str = Field(default="", max_length=40)
    email: str = Field(default="", max_length=254)
    url: str = Field(default="", max_length=500)
    how_to: str = Field(default="", max_length=2000, description="When and how to use it")
    platforms: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    source: str = Field(default="", max_length=300)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
