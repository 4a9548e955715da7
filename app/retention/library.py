"""The retention schedule Haven ships: a default period for each type of record, where it comes
from, and what it is counted from. The school's DPO should confirm them; the DSL can change the
years on the retention page."""

from dataclasses import dataclass

from app.retention.models import RecordKind, RecordType


@dataclass(frozen=True)
class ShippedRule:
    record_type: RecordType
    kind: RecordKind
    title: str
    covers: str
    years: int
    counted_from: str
    source: str


IRMS = "IRMS Information Management Toolkit for Schools"
LIMITATION = "Limitation Act 1980: six years for most civil claims"

SHIPPED_RULES = [
    ShippedRule(
        RecordType.incident_pupil,
        RecordKind.incident,
        "Child protection: incidents about pupils",
        "Incidents in which a pupil was responsible, targeted or involved (on the roster), "
        "other than plain phone misuse.",
        25,
        "the incident was closed",
        f"{IRMS} and KCSIE: a child protection record is kept until the child's 25th birthday, "
        "then reviewed. Haven holds no dates of birth, so it waits 25 years after closing, "
        "which is past the 25th birthday of a pupil of any age. When a pupil moves school, "
        "their record is transferred to the new school, not deleted.",
    ),
    ShippedRule(
        RecordType.incident_staff_allegation,
        RecordKind.incident,
        "Allegations about staff",
        "Incidents about a member of staff with any LADO harm-test answer of yes, or with the "
        "harm test not yet answered.",
        10,
        "the incident was closed",
        f"KCSIE part four and the {IRMS}: until the person's normal pension age or 10 years "
        "from the allegation, whichever is longer. Haven does not know ages: it waits 10 years "
        "after closing and never while the member of staff is still on the roster; the "
        "reviewer checks their pension age before deleting.",
    ),
    ShippedRule(
        RecordType.incident_staff_low_level,
        RecordKind.incident,
        "Low-level concerns about staff",
        "Incidents about a member of staff whose LADO harm test is all no.",
        6,
        "the incident was closed",
        "KCSIE: low-level concerns are kept at least until the member of staff leaves, so that "
        "patterns can be seen. Haven never lists one while the member of staff is still on the "
        f"roster, and then waits six years ({LIMITATION}).",
    ),
    ShippedRule(
        RecordType.incident_adult,
        RecordKind.incident,
        "Incidents about adults only",
        "Incidents with no pupil involved and no member of staff responsible: for example a "
        "parent's malicious post about a teacher.",
        6,
        "the incident was closed",
        f"Haven's choice: {LIMITATION}, within which the school may need the record.",
    ),
    ShippedRule(
        RecordType.incident_phone_misuse,
        RecordKind.incident,
        "Phone misuse (not a safeguarding matter)",
        "Phone misuse of low or medium severity, with no suspected criminal offence and no "
        "member of staff responsible.",
        2,
        "the incident was closed",
        "Haven's choice: a behaviour matter, kept for the rest of the school year and the next "
        "so that repeated misuse can be seen.",
    ),
    ShippedRule(
        RecordType.checklist_run,
        RecordKind.checklist_run,
        "Staff checklists",
        "A checklist a member of staff finished (an incident's playbook goes with its incident).",
        6,
        "the checklist was finished",
        f"Haven's choice: a record of what staff were asked to do, kept for the {LIMITATION}.",
    ),
    ShippedRule(
        RecordType.policy_version,
        RecordKind.policy_version,
        "Superseded policy versions and their acknowledgements",
        "A policy version replaced by a newer one, with who acknowledged it and when.",
        6,
        "the next version was published",
        "Haven's choice: what the policy said, and who had read it, matter to any complaint or "
        f"allegation about that time; kept for the {LIMITATION}.",
    ),
]

SHIPPED = {rule.record_type: rule for rule in SHIPPED_RULES}

MAX_YEARS = 100

DELETE_REASONS = {
    "period_over": "Its retention period is over and the school has no further need of it.",
    "person_left": "The member of staff it concerns has left and the period is over.",
    "dpo_advice": "The school's data protection officer advised deleting it.",
}
