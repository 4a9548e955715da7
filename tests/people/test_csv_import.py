"""Reading roster CSV files as MIS exports and spreadsheets write them, and refusing bad ones."""

import pytest

from app.people import csv_import
from app.people.csv_import import RosterCsvInvalid, parse_roster_csv
from app.people.models import PersonKind

HEADER = "ID,Type,Legal Forename,Legal Surname,Registration Group,UPN,Email\n"


def _problems(data: bytes) -> list[tuple[int | None, str, str]]:
    with pytest.raises(RosterCsvInvalid) as caught:
        parse_roster_csv(data)
    assert caught.value.status_code == 422
    return [(p.line, p.column, p.message) for p in caught.value.problems]


def test_a_plain_file_is_read_into_checked_people():
    rows = [
        "P1,pupil,Ann,Smith,8B,a123456789012,",
        "S1,staff,Bob,Jones,,,Bob.Jones@School.Example",
        "C1,parent/carer,Cat,Smith,,,",
    ]
    data = (HEADER + "\n".join(rows) + "\n").encode()
    roster = parse_roster_csv(data)
    assert [p.external_id for p in roster.people] == ["P1", "S1", "C1"]
    assert [p.kind for p in roster.people] == [
        PersonKind.pupil,
        PersonKind.staff,
        PersonKind.parent_carer,
    ]
    assert roster.people[0].upn == "A123456789012"
    assert roster.people[0].registration_group == "8B"
    assert roster.people[1].email == "bob.jones@school.example"
    assert roster.people[2].registration_group is None  # blank is none
    assert all(p.is_active for p in roster.people)
    assert roster.lines == [2, 3, 4]
    assert roster.ignored_columns == []


def test_excel_byte_order_mark_and_windows_line_endings():
    data = "\ufeffID,Type,Forename,Surname\r\n1,Pupil,Zoë,Ødegaard\r\n".encode()
    roster = parse_roster_csv(data)
    assert roster.columns["external_id"] == "ID"  # not "\ufeffID"
    assert (roster.people[0].forename, roster.people[0].surname) == ("Zoë", "Ødegaard")
    assert roster.encoding == "utf-8"


def test_windows_1252_is_read_when_the_file_is_not_utf8():
    data = "ID,Type,Forename,Surname\n1,pupil,Siân,O\u2019Brien\n".encode("cp1252")
    roster = parse_roster_csv(data)
    assert roster.encoding == "cp1252"
    assert (roster.people[0].forename, roster.people[0].surname) == ("Siân", "O\u2019Brien")


def test_utf16_unicode_text_with_tabs():
    data = "ID\tType\tForename\tSurname\r\n1\tstaff\tÉmile\tZola\r\n".encode("utf-16")
    roster = parse_roster_csv(data)
    assert roster.people[0].forename == "Émile"


def test_semicolons_as_separator():
    roster = parse_roster_csv(b"ID;Type;Forename;Surname\n1;pupil;Ann;Smith\n")
    assert roster.people[0].surname == "Smith"


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ("Legal Forename", "forename"),
        ("first name", "forename"),
        ("FORENAME", "forename"),
        ("  First_Name ", "forename"),
        ("Preferred Forename", "preferred_forename"),
        ("Reg Group", "registration_group"),
        ("Form", "registration_group"),
        ("NC Year", "year_group"),
        ("Year", "year_group"),
        ("Adno", "mis_id"),
        ("Admission Number", "mis_id"),
        ("MIS ID", "mis_id"),
        ("Work Email", "email"),
        ("unique pupil number", "upn"),
    ],
)
def test_common_mis_headers_are_understood(headers, field):
    value = "x@school.example" if field == "email" else "A123456789012" if field == "upn" else "V"
    other_forename = "" if field == "forename" else ",Forename"
    data = (
        f"External ID,Kind,Last name{other_forename},{headers}\n"
        f"1,student,Smith{',Ann' if other_forename else ''},{value}\n"
    ).encode()
    roster = parse_roster_csv(data)
    assert getattr(roster.people[0], field) == value
    assert roster.columns[field] == headers.strip()


@pytest.mark.parametrize(
    ("written", "kind"),
    [
        ("pupil", PersonKind.pupil),
        ("Student", PersonKind.pupil),
        ("STAFF", PersonKind.staff),
        ("Employee", PersonKind.staff),
        ("contact", PersonKind.parent_carer),
        ("Parent", PersonKind.parent_carer),
        ("parent_carer", PersonKind.parent_carer),
        ("Parent/Carer", PersonKind.parent_carer),
    ],
)
def test_type_names(written, kind):
    roster = parse_roster_csv(f"ID,Type,Forename,Surname\n1,{written},A,B\n".encode())
    assert roster.people[0].kind == kind


def test_an_active_column_marks_leavers():
    data = b"ID,Type,Forename,Surname,Active\n1,pupil,A,B,Yes\n2,pupil,C,D,no\n3,pupil,E,F,\n"
    assert [p.is_active for p in parse_roster_csv(data).people] == [True, False, True]
    assert _problems(b"ID,Type,Forename,Surname,Active\n1,pupil,A,B,perhaps\n") == [
        (2, "Active", "must be yes or no, not “perhaps”")
    ]


def test_unknown_columns_are_ignored_and_listed_never_kept():
    data = b"ID,Type,Forename,Surname,Medical notes,,SEN\n1,pupil,A,B,asthma,,K\n"
    roster = parse_roster_csv(data)
    assert roster.ignored_columns == ["Medical notes", "column 6 (no heading)", "SEN"]
    assert "asthma" not in str(roster.people[0].model_dump())


def test_a_quoted_value_with_line_breaks_counts_its_lines():
    data = (
        b"ID,Type,Forename,Surname\n"
        b'1,pupil,"Ann\nMarie",Smith\n'  # lines 2-3
        b'2,pupil,Bob,"Jo\r\n\r\nnes"\n'  # lines 4-6
        b"3,pupil,,Brown\n"  # line 7
    )
    assert _problems(data) == [(7, "Forename", "is empty; it is required")]
    roster = parse_roster_csv(data.replace(b",,Brown", b",Cat,Brown"))
    assert roster.lines == [2, 4, 7]
    assert roster.people[0].forename == "Ann Marie"  # line breaks inside a value become spaces


def test_blank_lines_are_skipped_but_counted():
    data = b"ID,Type,Forename,Surname\n\n1,pupil,A,B\n,,,\n2,pupil,,D\n"
    assert _problems(data) == [(5, "Forename", "is empty; it is required")]


def test_every_bad_row_is_reported_with_its_line_and_column():
    rows = [
        "1,pupil,Ann,Smith,8B,A12,",  # 2: bad UPN
        "2,governor,Bob,Jones,,,",  # 3: unknown type
        "3,staff,Cat,Brown,,,not-an-email",  # 4: bad email
        "4,staff,Dan,Green,,A123456789012,",  # 5: UPN on staff
        f"5,pupil,{'x' * 101},White,,,",  # 6: too long
        ",pupil,Eve,Black,,,",  # 7: no ID
        "7,,Fay,Grey,,,",  # 8: no type
    ]
    data = (HEADER + "\n".join(rows) + "\n").encode()
    problems = _problems(data)
    assert [(line, column) for line, column, _ in problems] == [
        (2, "UPN"),
        (3, "Type"),
        (4, "Email"),
        (5, "UPN"),
        (6, "Legal Forename"),
        (7, "ID"),
        (8, "Type"),
    ]
    messages = dict(((line, column), message) for line, column, message in problems)
    assert messages[(2, "UPN")].startswith("is not a UPN")
    assert messages[(3, "Type")] == "must be pupil, staff or parent/carer, not “governor”"
    assert messages[(4, "Email")] == "is not an email address"
    assert messages[(5, "UPN")] == "a UPN belongs to pupils only"
    assert messages[(6, "Legal Forename")] == "is longer than 100 characters"
    assert messages[(7, "ID")] == "is empty; it is required"


def test_repeated_ids_name_every_line():
    data = b"ID,Type,Forename,Surname\nA,pupil,a,b\nB,pupil,c,d\nA,pupil,e,f\nA,staff,g,h\n"
    problems = _problems(data)
    assert [(line, column) for line, column, _ in problems] == [(2, "ID"), (4, "ID"), (5, "ID")]
    assert "also on lines 4, 5" in problems[0][2]
    assert "also on lines 2, 5" in problems[1][2]


def test_a_row_with_too_many_values_is_refused():
    problems = _problems(b"ID,Type,Forename,Surname\n1,pupil,Smith, John,Extra\n")
    assert problems[0][0] == 2 and "5 values but the header has 4 columns" in problems[0][2]


def test_a_row_with_too_few_values_reports_the_missing_fields():
    assert _problems(b"ID,Type,Forename,Surname\n1,pupil,Ann\n") == [
        (2, "Surname", "is empty; it is required")
    ]


def test_missing_required_columns_are_named():
    problems = _problems(b"ID,Forename,Last name,Notes\n1,A,B,C\n")
    assert len(problems) == 1
    line, column, message = problems[0]
    assert (line, column) == (1, "Type")
    assert "required column “Type” is missing" in message
    with pytest.raises(RosterCsvInvalid) as caught:
        parse_roster_csv(b"ID,Forename,Last name,Notes\n1,A,B,C\n")
    assert caught.value.ignored_columns == ["Notes"]


def test_a_file_without_a_header_row_is_refused():
    problems = _problems(b"1,pupil,Ann,Smith\n2,pupil,Bob,Jones\n")
    columns = {column for _, column, _ in problems}
    assert columns == {"ID", "Type", "Legal Forename", "Legal Surname"}


def test_two_columns_for_the_same_field_are_refused():
    problems = _problems(b"ID,Type,Forename,Legal Forename,Surname\n1,pupil,A,A,B\n")
    assert problems == [
        (
            1,
            "Legal Forename",
            "The columns “Forename” and “Legal Forename” both give the legal forename; keep "
            "only one of them.",
        )
    ]


@pytest.mark.parametrize("data", [b"", b"   \r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n\r\n"])
def test_empty_files_are_refused(data):
    assert _problems(data) == [(None, "", "The file is empty.")]


def test_a_header_without_people_is_refused():
    assert _problems(b"ID,Type,Forename,Surname\n\n") == [
        (None, "", "The file has a header row but no people in it.")
    ]


def test_files_over_the_row_cap_are_refused():
    rows = "".join(f"{n},pupil,A,B\n" for n in range(csv_import.MAX_ROWS + 1))
    (problem,) = _problems(("ID,Type,Forename,Surname\n" + rows).encode())
    assert "more than 5,000 people" in problem[2]
    rows = "".join(f"{n},pupil,A,B\n" for n in range(csv_import.MAX_ROWS))
    assert len(parse_roster_csv(("ID,Type,Forename,Surname\n" + rows).encode()).people) == 5000


def test_files_over_the_size_cap_are_refused():
    data = b"ID,Type,Forename,Surname,Notes\n" + b"1,pupil,A,B," + b"x" * csv_import.MAX_CSV_BYTES
    (problem,) = _problems(data)
    assert "larger than 5 MB" in problem[2]


def test_spreadsheets_and_binary_files_are_refused_with_advice():
    (problem,) = _problems(b"PK\x03\x04" + b"\x00" * 100)
    assert "Save As > CSV UTF-8" in problem[2]
    (problem,) = _problems(b"ID,Type\x00,Forename,Surname\n")
    assert "not a CSV text file" in problem[2]
    (problem,) = _problems(b"\xef\xbb\xbfID,Type,Forename,Surname\n1,pupil,\xff,B\n")
    assert "cannot read the file as text" in problem[2]


def test_problem_count_is_capped_for_a_wholly_wrong_file():
    rows = "".join(f"{n},pupil,,B\n" for n in range(2000))
    with pytest.raises(RosterCsvInvalid) as caught:
        parse_roster_csv(("ID,Type,Forename,Surname\n" + rows).encode())
    assert len(caught.value.problems) == csv_import.MAX_ERRORS
    assert caught.value.truncated


def test_the_template_header_reads_back_as_every_column():
    header = ",".join(csv_import.template_header())
    roster = parse_roster_csv(f"{header}\n1,pupil,A,B,,,,,,,,yes\n".encode())
    assert set(roster.columns) == {column.field for column in csv_import.COLUMNS}
