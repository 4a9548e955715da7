"""Reading a roster exported from the school's MIS as CSV (SIMS, Arbor, Bromcom, a spreadsheet).

`parse_roster_csv` turns the uploaded bytes into checked `PersonIn` records, or refuses the whole
file with every problem it found, each with its line number (the header is line 1, and a quoted
value holding a line break counts as the lines it spans) and its column as written in the file.
Nothing here touches the database.

- Text: UTF-8 (with or without the byte order mark Excel writes), UTF-16 with a byte order mark
  (Excel's "Unicode text"), otherwise Windows-1252 (older Excel on Windows).
- Separator: commas, or semicolons or tabs when the header row uses those instead.
- Headers: case, spacing, underscores and hyphens do not matter, and the names the common MIS
  exports use are understood (`COLUMNS`). Columns Haven does not know are ignored, never stored,
  and listed so that the person importing sees them.
"""

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field

from pydantic import ValidationError

from app.core.errors import InvalidInput
from app.people.models import MAX_PEOPLE_PER_SYNC, PersonIn, PersonKind

MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_ROWS = MAX_PEOPLE_PER_SYNC
MAX_ERRORS = 500  # a wholly wrong file stops being read after this many problems


@dataclass(frozen=True)
class Column:
    field: str
    header: str  # the name Haven's template uses
    aliases: tuple[str, ...]
    required: bool
    explanation: str


COLUMNS: tuple[Column, ...] = (
    Column(
        "external_id",
        "ID",
        ("id", "external id", "externalid", "person id", "unique id"),
        True,
        "The MIS's unique identifier for the person; it never changes and is never reused.",
    ),
    Column(
        "kind",
        "Type",
        ("type", "kind", "person type"),
        True,
        "pupil (or student), staff (or employee), or parent/carer (or contact).",
    ),
    Column(
        "forename",
        "Legal Forename",
        ("legal forename", "forename", "first name", "firstname", "given name"),
        True,
        "Legal first name.",
    ),
    Column(
        "surname",
        "Legal Surname",
        ("legal surname", "surname", "last name", "lastname", "family name"),
        True,
        "Legal last name.",
    ),
    Column(
        "preferred_forename",
        "Preferred Forename",
        ("preferred forename", "preferred first name", "known as"),
        False,
        "The first name the person uses, if different.",
    ),
    Column(
        "preferred_surname",
        "Preferred Surname",
        ("preferred surname", "preferred last name"),
        False,
        "The last name the person uses, if different.",
    ),
    Column(
        "year_group",
        "Year Group",
        ("year group", "year", "nc year", "national curriculum year"),
        False,
        "Pupils: e.g. Year 8.",
    ),
    Column(
        "registration_group",
        "Registration Group",
        ("registration group", "reg group", "reg", "form", "form group", "tutor group"),
        False,
        "Pupils: form or registration group, e.g. 8B.",
    ),
    Column(
        "mis_id",
        "Admission Number",
        ("admission number", "adno", "adm no", "admission no", "mis id"),
        False,
        "The MIS's own number: admission number for pupils, staff code or id for staff.",
    ),
    Column(
        "upn",
        "UPN",
        ("upn", "unique pupil number"),
        False,
        "Pupils only: the 13-character unique pupil number.",
    ),
    Column(
        "email",
        "Email",
        ("email", "work email", "email address", "school email", "e mail"),
        False,
        "Staff: the school email address they sign in to Haven with (links their account).",
    ),
    Column(
        "is_active",
        "Active",
        ("active", "is active", "on roll"),
        False,
        "yes or no; leave the column out and everyone in the file is on roll.",
    ),
)

_BY_FIELD = {column.field: column for column in COLUMNS}

_KINDS = {
    "pupil": PersonKind.pupil,
    "student": PersonKind.pupil,
    "learner": PersonKind.pupil,
    "staff": PersonKind.staff,
    "employee": PersonKind.staff,
    "teacher": PersonKind.staff,
    "parent carer": PersonKind.parent_carer,
    "parent": PersonKind.parent_carer,
    "carer": PersonKind.parent_carer,
    "contact": PersonKind.parent_carer,
    "guardian": PersonKind.parent_carer,
}
_YES = {"yes", "y", "true", "1", "active", "on roll", "current"}
_NO = {"no", "n", "false", "0", "inactive", "left", "leaver", "off roll"}


def normalise_header(header: str) -> str:
    """'  Legal_Forename ' and 'legal-forename' → 'legal forename'."""
    return " ".join(re.sub(r"[\s_\-./]+", " ", header).lower().split())


_ALIASES = {alias: column.field for column in COLUMNS for alias in column.aliases}


@dataclass(frozen=True)
class CsvProblem:
    """One reason the file cannot be imported. `line` is None for the file as a whole."""

    message: str
    line: int | None = None
    column: str = ""

    def as_dict(self) -> dict:
        return {"line": self.line, "column": self.column, "message": self.message}


class RosterCsvInvalid(InvalidInput):
    """The file cannot be imported; `problems` lists every reason found, `ignored_columns` the
    columns Haven would have left out."""

    title = "Roster file not accepted"

    def __init__(
        self,
        problems: list[CsvProblem],
        *,
        ignored_columns: list[str] | None = None,
        truncated: bool = False,
    ):
        self.problems = problems
        self.ignored_columns = ignored_columns or []
        self.truncated = truncated
        lines = {p.line for p in problems if p.line is not None}
        if lines:
            detail = (
                f"Nothing was imported: {len(problems)} problem{'s' * (len(problems) != 1)} "
                f"on {len(lines)} line{'s' * (len(lines) != 1)} of the file."
            )
        else:
            detail = "Nothing was imported: " + " ".join(p.message for p in problems)
        super().__init__(detail, errors=[p.as_dict() for p in problems])


@dataclass
class ParsedRoster:
    people: list[PersonIn]
    lines: list[int]  # the line each person starts on
    columns: dict[str, str]  # field → the header as written in the file
    ignored_columns: list[str] = field(default_factory=list)
    encoding: str = "utf-8"


def decode(data: bytes) -> tuple[str, str]:
    """The text of the file and the encoding it was read with."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252"), "cp1252"


def _refuse(message: str, line: int | None = None, column: str = "") -> RosterCsvInvalid:
    return RosterCsvInvalid([CsvProblem(message, line, column)])


def _check_bytes(data: bytes) -> None:
    if len(data) > MAX_CSV_BYTES:
        raise _refuse(
            f"The file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB. Export only the "
            "columns Haven uses (see the list on this page) and try again."
        )
    if not data.strip(b"\xef\xbb\xbf\xff\xfe \t\r\n"):
        raise _refuse("The file is empty.")
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise _refuse(
            "This is a spreadsheet workbook, not a CSV file. Open it in Excel and use "
            "File > Save As > CSV UTF-8, then upload that file."
        )


def _delimiter(first_line: str) -> str:
    counts = {sep: first_line.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > counts[","] else ","


def _map_headers(headers: list[str]) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Field → column index and header, and the ignored headers; refuses what cannot work."""
    positions: dict[str, int] = {}
    names: dict[str, str] = {}
    ignored: list[str] = []
    problems: list[CsvProblem] = []
    for index, raw in enumerate(headers):
        header = raw.strip()
        name = _ALIASES.get(normalise_header(header))
        if name is None:
            ignored.append(header or f"column {index + 1} (no heading)")
            continue
        if name in positions:
            problems.append(
                CsvProblem(
                    f"The columns “{names[name]}” and “{header}” both give the "
                    f"{_BY_FIELD[name].header.lower()}; keep only one of them.",
                    1,
                    header,
                )
            )
            continue
        positions[name] = index
        names[name] = header
    for column in COLUMNS:
        if column.required and column.field not in positions:
            also = ", ".join(f"“{a}”" for a in column.aliases[:3])
            problems.append(
                CsvProblem(
                    f"The required column “{column.header}” is missing (Haven also accepts "
                    f"{also}). The header row must be the first line of the file.",
                    1,
                    column.header,
                )
            )
    if problems:
        raise RosterCsvInvalid(problems, ignored_columns=ignored)
    return positions, names, ignored


def _kind(value: str) -> PersonKind | str:
    return _KINDS.get(normalise_header(value), value)


def _active(value: str) -> bool | str:
    word = " ".join(value.lower().split())
    if not word or word in _YES:
        return True
    if word in _NO:
        return False
    return value


_MESSAGES = {
    "string_too_short": "is empty; it is required",
    "missing": "is empty; it is required",
}


def _friendly(error: dict) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    name = error["loc"][0] if error["loc"] else ""
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "string_too_long":
        return f"is longer than {context.get('max_length')} characters"
    if name == "upn":
        return "is not a UPN: a letter, 11 digits, then a digit or letter (e.g. A123456789012)"
    if name == "email":
        return "is not an email address"
    given = error.get("input")
    if name == "kind":
        if not str(given or "").strip():
            return "is empty; it is required (pupil, staff or parent/carer)"
        return f"must be pupil, staff or parent/carer, not “{given}”"
    if name == "is_active":
        return f"must be yes or no, not “{given}”"
    return str(error["msg"]).removeprefix("Value error, ")


def _row_problems(exc: ValidationError, line: int, names: dict[str, str]) -> list[CsvProblem]:
    problems = []
    for error in exc.errors():
        name = error["loc"][0] if error["loc"] else ""
        if not name and "UPN" in str(error["msg"]):
            name = "upn"
        column = names.get(str(name), _BY_FIELD[name].header if name in _BY_FIELD else "")
        problems.append(CsvProblem(_friendly(error), line, column))
    return problems


def _repeated_ids(external_ids: list[tuple[str, int]], column: str) -> list[CsvProblem]:
    lines_of: dict[str, list[int]] = defaultdict(list)
    for external_id, line in external_ids:
        lines_of[external_id].append(line)
    problems = []
    for external_id, lines in lines_of.items():
        if len(lines) < 2:
            continue
        for line in lines:
            others = ", ".join(str(n) for n in lines if n != line)
            problems.append(
                CsvProblem(
                    f"the ID {external_id} is repeated (also on line{'s' * (len(lines) > 2)} "
                    f"{others}); each person must appear once",
                    line,
                    column,
                )
            )
    return problems


def parse_roster_csv(data: bytes) -> ParsedRoster:
    """Every person in the file, checked; raises `RosterCsvInvalid` if anything is wrong."""
    _check_bytes(data)
    try:
        text, encoding = decode(data)
    except UnicodeError:
        raise _refuse(
            "Haven cannot read the file as text. Save it from Excel as CSV UTF-8 and try again."
        ) from None
    if "\x00" in text:
        raise _refuse("The file is not a CSV text file. Save it as CSV UTF-8 and try again.")
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))

    try:
        headers = next(reader)
    except (StopIteration, csv.Error):
        raise _refuse("The file has no header row.", 1) from None
    positions, names, ignored = _map_headers(headers)

    people: list[PersonIn] = []
    starts: list[int] = []
    problems: list[CsvProblem] = []
    external_ids: list[tuple[str, int]] = []
    truncated = False
    rows = 0
    next_line = reader.line_num + 1
    while True:
        line = next_line
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(CsvProblem(f"the line cannot be read as CSV ({exc})", line))
            break
        next_line = reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue  # blank lines, and the empty rows spreadsheets leave at the end
        rows += 1
        if rows > MAX_ROWS:
            message = (
                f"The file has more than {MAX_ROWS:,} people; Haven imports up to {MAX_ROWS:,} "
                "at a time. Split it by type (pupils, staff, parents and carers) and import each "
                "file without ticking “whole roster”."
            )
            raise RosterCsvInvalid([CsvProblem(message)], ignored_columns=ignored)
        if len(row) > len(headers) and any(cell.strip() for cell in row[len(headers) :]):
            problems.append(
                CsvProblem(
                    f"the line has {len(row)} values but the header has {len(headers)} columns "
                    "(a comma inside a value needs quotes around the value)",
                    line,
                )
            )
            continue
        # Runs of spaces and line breaks inside a value become one space.
        values = {
            name: " ".join(row[index].split()) if index < len(row) else ""
            for name, index in positions.items()
        }
        values["kind"] = _kind(values["kind"])
        if "is_active" in values:
            values["is_active"] = _active(values["is_active"])
        try:
            person = PersonIn.model_validate(values)
        except ValidationError as exc:
            problems += _row_problems(exc, line, names)
        else:
            people.append(person)
            starts.append(line)
            external_ids.append((person.external_id, line))
        if len(problems) >= MAX_ERRORS:
            truncated = True
            break

    if rows == 0 and not problems:
        raise _refuse("The file has a header row but no people in it.")
    if not truncated:
        problems += _repeated_ids(external_ids, names["external_id"])
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise RosterCsvInvalid(problems, ignored_columns=ignored, truncated=truncated)
    return ParsedRoster(
        people=people,
        lines=starts,
        columns=names,
        ignored_columns=ignored,
        encoding=encoding,
    )


def template_header() -> list[str]:
    return [column.header for column in COLUMNS]
