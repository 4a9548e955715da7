"""The condition language of escalation rules: clauses of (field, operator, value), all or any.

Conditions are data the DSL edits, so they are checked against this closed vocabulary when saved
and evaluated in Python against an incident, never turned into SQL or code.
"""

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.incidents.models import (
    Category,
    ContentFlag,
    Incident,
    LadoHarmTest,
    OffenderType,
    Platform,
    TargetType,
)


class Operator(StrEnum):
    is_ = "is"
    is_not = "is_not"
    is_one_of = "is_one_of"
    includes_any = "includes_any"
    is_true = "is_true"
    is_false = "is_false"


# field -> (words for people, its values or None for a yes/no, the operators it accepts)
CHOICE_OPS = (Operator.is_, Operator.is_not, Operator.is_one_of)
FLAG_OPS = (Operator.is_true, Operator.is_false)
FIELDS: dict[str, tuple[str, type | None, tuple[Operator, ...]]] = {
    "offender_type": ("who seems responsible", OffenderType, CHOICE_OPS),
    "target_type": ("who is targeted", TargetType, CHOICE_OPS),
    "category": ("the kind of concern", Category, CHOICE_OPS),
    "platform": ("the platform", Platform, CHOICE_OPS),
    "content_flags": ("the content", ContentFlag, (Operator.includes_any,)),
    "suspected_criminal_offence": ("a crime is suspected", None, FLAG_OPS),
    "removal_requested": ("removal was requested", None, FLAG_OPS),
    "removal_refused": ("removal was refused", None, FLAG_OPS),
    "lado_any_yes": ("any LADO harm-test answer is yes", None, FLAG_OPS),
}
OPERATOR_WORDS = {
    Operator.is_: "is",
    Operator.is_not: "is not",
    Operator.is_one_of: "is one of",
    Operator.includes_any: "includes any of",
    Operator.is_true: "yes",
    Operator.is_false: "no",
}


class Clause(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    op: Operator
    value: list[str] | str | None = None

    @model_validator(mode="after")
    def _check(self) -> "Clause":
        if self.field not in FIELDS:
            raise ValueError(f"unknown field {self.field!r}")
        _, values, operators = FIELDS[self.field]
        if self.op not in operators:
            raise ValueError(f"{self.field} cannot use the operator {self.op.value!r}")
        if values is None:
            if self.value not in (None, "", []):
                raise ValueError(f"{self.field} takes no value")
            self.value = None
            return self
        chosen = [self.value] if isinstance(self.value, str) else list(self.value or [])
        if not chosen:
            raise ValueError(f"{self.field} needs a value")
        allowed = {member.value for member in values}
        if unknown := [v for v in chosen if v not in allowed]:
            raise ValueError(f"{unknown[0]!r} is not a value of {self.field}")
        if self.op in (Operator.is_, Operator.is_not) and len(chosen) != 1:
            raise ValueError(f"{self.field} {self.op.value} takes exactly one value")
        self.value = chosen[0] if self.op in (Operator.is_, Operator.is_not) else chosen
        return self

    def matches(self, incident: Incident) -> bool:
        actual = _field_value(incident, self.field)
        if self.op == Operator.is_:
            return actual == self.value
        if self.op == Operator.is_not:
            return actual != self.value
        if self.op == Operator.is_one_of:
            return actual in self.value
        if self.op == Operator.includes_any:
            return bool(set(actual) & set(self.value))
        return bool(actual) is (self.op == Operator.is_true)

    def in_words(self) -> str:
        label, _, _ = FIELDS[self.field]
        if self.value is None:
            return f"{label}: {OPERATOR_WORDS[self.op]}"
        shown = ", ".join(self.value) if isinstance(self.value, list) else self.value
        return f"{label} {OPERATOR_WORDS[self.op]} {shown.replace('_', ' ')}"


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    match: Literal["all", "any"] = "all"
    clauses: list[Clause] = Field(min_length=1, max_length=10)

    def matches(self, incident: Incident) -> bool:
        results = (clause.matches(incident) for clause in self.clauses)
        return all(results) if self.match == "all" else any(results)

    def in_words(self) -> str:
        joiner = " and " if self.match == "all" else " or "
        return joiner.join(clause.in_words() for clause in self.clauses)


def _field_value(incident: Incident, field: str) -> Any:
    if field == "lado_any_yes":
        return (
            bool(incident.lado_harm_test)
            and LadoHarmTest.model_validate(incident.lado_harm_test).any_yes
        )
    value = getattr(incident, field)
    if field == "content_flags":
        return list(value or [])
    return value.value if hasattr(value, "value") else value
