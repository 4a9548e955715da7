"""The example MIS sync client (examples/mis_sync_client.py), run against the real application."""

import importlib.util
import json
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from app.auth.models import Role, Scope
from app.auth.rate_limit import TokenRateLimiter
from app.incidents.models import Incident
from app.people.models import Person
from tests.factories import make_incident, make_token, make_user

CLIENT_PATH = Path(__file__).resolve().parents[2] / "examples" / "mis_sync_client.py"


def _load_client():
    spec = importlib.util.spec_from_file_location("mis_sync_client", CLIENT_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and friends look modules up by name
    spec.loader.exec_module(module)
    return module


sync = _load_client()


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The client's waits, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(sync, "sleep", waited.append)
    return waited


def _authorise(client, db, *scopes: Scope) -> str:
    raw, _token = make_token(db, *scopes)
    client.headers["Authorization"] = f"Bearer {raw}"
    return raw


def _pupil(n: int, **overrides) -> dict:
    return {
        "external_id": f"STU-{n}",
        "kind": "pupil",
        "forename": f"Forename{n}",
        "surname": f"Surname{n}",
        "year_group": "Year 8",
        "registration_group": "8B",
        **overrides,
    }


def _staff(n: int, email: str, **overrides) -> dict:
    return {
        "external_id": f"EMP-{n}",
        "kind": "staff",
        "forename": f"Teacher{n}",
        "surname": f"Surname{n}",
        "email": email,
        **overrides,
    }


def _through(client, handler):
    """An httpx.Client whose requests go to `handler` first; it may answer or pass them on to
    the application (through the test client)."""

    def handle(request: httpx.Request) -> httpx.Response:
        answer = handler(request)
        return answer if answer is not None else client.send(request)

    return httpx.Client(
        transport=httpx.MockTransport(handle),
        base_url=str(client.base_url),
        headers=dict(client.headers),
    )


def _problem(status: int, title: str, detail: str, **headers) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return httpx.Response(
        status,
        json=body,
        headers={"content-type": "application/problem+json", **headers},
    )


# --- Roster -------------------------------------------------------------------------------------


def test_pushing_a_roster_creates_people_and_a_second_push_changes_nothing(client, db):
    _authorise(client, db, Scope.people_write)
    roster = [_pupil(1), _pupil(2), _staff(3, "teacher3@school.example")]

    first = sync.push_roster(client, roster)
    assert first["created"] == 3
    assert (first["updated"], first["unchanged"], first["deactivated"]) == (0, 0, 0)
    second = sync.push_roster(client, roster)
    assert second["unchanged"] == 3
    assert (second["created"], second["updated"], second["deactivated"]) == (0, 0, 0)
    stored = db.exec(select(Person.external_id).where(Person.is_active.is_(True))).all()
    assert sorted(stored) == ["EMP-3", "STU-1", "STU-2"]


def test_a_full_sync_in_one_request_deactivates_leavers_and_their_accounts(client, db):
    _authorise(client, db, Scope.people_write)
    teacher = make_user(db, role=Role.staff, email="leaver@school.example")
    first = sync.push_roster(client, [_pupil(1), _pupil(2), _staff(3, "Leaver@School.example")])
    assert first["accounts_linked"] == 1
    requests: list[httpx.Request] = []
    recording = _through(client, requests.append)

    result = sync.push_roster(recording, [_pupil(1), _pupil(2)], full=True)

    assert (result["unchanged"], result["deactivated"], result["accounts_deactivated"]) == (2, 1, 1)
    assert len(requests) == 1
    assert json.loads(requests[0].content)["deactivate_missing"] is True
    leaver = db.exec(select(Person).where(Person.external_id == "EMP-3")).one()
    db.refresh(leaver)
    db.refresh(teacher)
    assert leaver.is_active is False and teacher.is_active is False


def test_a_full_sync_split_into_parts_deactivates_leavers_and_their_accounts(client, db):
    _authorise(client, db, Scope.people_write, Scope.people_read)
    teacher = make_user(db, role=Role.staff, email="leaver@school.example")
    roster = [_pupil(n) for n in range(1, 5)] + [_staff(9, "leaver@school.example")]
    first = sync.push_roster(client, roster, chunk_size=2)  # three requests
    assert (first["created"], first["accounts_linked"]) == (5, 1)
    requests: list[httpx.Request] = []
    recording = _through(client, requests.append)

    # STU-4 and the member of staff have left; the rest is sent in parts of two.
    result = sync.push_roster(recording, roster[:3], full=True, chunk_size=2)

    assert (result["created"], result["updated"], result["unchanged"]) == (0, 0, 3)
    assert (result["deactivated"], result["accounts_deactivated"]) == (2, 1)
    methods = [r.method for r in requests]
    assert methods == ["GET", "PUT", "PUT", "PUT"]  # read Haven's roster, two parts, leavers
    bodies = [json.loads(r.content) for r in requests if r.method == "PUT"]
    assert not any(body["deactivate_missing"] for body in bodies)
    assert {p["external_id"]: p["is_active"] for p in bodies[-1]["people"]} == {
        "STU-4": False,
        "EMP-9": False,
    }
    active = db.exec(select(Person.external_id).where(Person.is_active.is_(True))).all()
    assert sorted(active) == ["STU-1", "STU-2", "STU-3"]
    db.refresh(teacher)
    assert teacher.is_active is False

    # Sent again, nothing changes: the leavers are already inactive.
    again = sync.push_roster(client, roster[:3], full=True, chunk_size=2)
    assert (again["unchanged"], again["deactivated"]) == (3, 0)


def test_a_split_full_sync_without_people_read_fails_before_writing_anything(client, db):
    _authorise(client, db, Scope.people_write)
    with pytest.raises(sync.HavenError) as refused:
        sync.push_roster(client, [_pupil(1), _pupil(2), _pupil(3)], full=True, chunk_size=2)
    assert refused.value.status == 403
    assert "people:read" in str(refused.value)
    assert db.exec(select(Person)).all() == []


def test_a_roster_haven_would_refuse_is_not_sent(client, db):
    _authorise(client, db, Scope.people_write)
    with pytest.raises(sync.RosterError, match="repeated: STU-1"):
        # The repeat is in another part, where Haven could not see it.
        sync.push_roster(client, [_pupil(1), _pupil(2), _pupil(1)], chunk_size=2)
    with pytest.raises(sync.RosterError, match="empty"):
        sync.push_roster(client, [], full=True)
    assert db.exec(select(Person)).all() == []


def test_field_errors_are_printed_with_their_field(client, db, tmp_path, monkeypatch, capsys):
    raw, _token = make_token(db, Scope.people_write)
    monkeypatch.setenv("HAVEN_TOKEN", raw)
    roster = tmp_path / "roster.json"
    roster.write_text(json.dumps([_pupil(1, kind="pupil", upn="not-a-upn")]))

    code = sync.main(["--base-url", "https://testserver", "push-roster", str(roster)], client)

    assert code == 1
    err = capsys.readouterr().err
    assert "Haven refused PUT /api/v1/people: 422 Invalid input" in err
    assert "people.0.upn" in err
    assert "request id" in err
    assert db.exec(select(Person)).all() == []


# --- Incidents ----------------------------------------------------------------------------------


def _pull(client, state: dict, page_size: int = 2) -> tuple[list[int], dict]:
    changed, new_state = sync.pull_incidents(client, state, page_size=page_size)
    return [incident["id"] for incident in changed], new_state


def test_pulling_in_pages_gives_each_incident_once_then_only_what_changed(client, db):
    _authorise(client, db, Scope.incidents_read, Scope.incidents_write)
    made = [make_incident(db, title=f"Incident {n}").id for n in range(5)]
    requests: list[httpx.Request] = []
    counting = _through(client, lambda request: requests.append(request))

    ids, state = _pull(counting, {})
    assert sorted(ids) == sorted(made)
    assert len(requests) == 3  # pages of two
    assert all(r.url.params["limit"] == "2" for r in requests)
    assert "updated_since" not in requests[0].url.params  # the first run takes everything
    assert set(state["seen"]) == {str(i) for i in made}  # all changed within the overlap

    # One incident changes, one is reported; the others are not given out again.
    response = client.patch(f"/api/v1/incidents/{made[2]}", json={"status": "in_progress"})
    assert response.status_code == 200, response.text
    newer = make_incident(db, title="Incident 6").id
    requests.clear()
    ids, state = _pull(counting, state)
    assert sorted(ids) == sorted([made[2], newer])
    assert all("updated_since" in r.url.params for r in requests)

    ids, _state = _pull(counting, state)
    assert ids == []


def test_a_change_committed_late_inside_the_overlap_is_not_missed(client, db):
    _authorise(client, db, Scope.incidents_read)
    make_incident(db)
    _ids, state = _pull(client, {})

    # A transaction that began before the last run and committed after it: its change carries
    # a time before the state's `since`.
    late = make_incident(db, title="Committed late")
    late.updated_at = sync._instant(state["since"]) - timedelta(minutes=1)
    db.add(late)
    db.commit()

    ids, _state = _pull(client, state)
    assert ids == [late.id]


def test_a_429_is_waited_out_for_as_long_as_retry_after_says(app, client, db, monkeypatch):
    _authorise(client, db, Scope.incidents_read)
    made = [make_incident(db, title=f"Incident {n}").id for n in range(3)]
    app.state.rate_limiter = TokenRateLimiter("2/minute")  # Haven's own limiter, made strict
    waited: list[float] = []

    def a_minute_passes(seconds: float) -> None:
        waited.append(seconds)
        app.state.rate_limiter = TokenRateLimiter("2/minute")

    monkeypatch.setattr(sync, "sleep", a_minute_passes)

    ids, _state = _pull(client, {}, page_size=1)  # the third page is over the limit

    assert sorted(ids) == sorted(made)
    assert len(waited) == 1
    assert 55 <= waited[0] <= 60  # Retry-After: the rest of the minute


def test_retry_after_as_a_date_and_beyond_the_longest_wait():
    far_off = httpx.Response(429, headers={"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"})
    assert sync.retry_after_seconds(far_off, default=1) == sync.MAX_WAIT_SECONDS
    assert sync.retry_after_seconds(httpx.Response(503), default=4) == 4
    assert sync.retry_after_seconds(httpx.Response(429, headers={"Retry-After": "x"}), 2) == 2


def test_retries_are_bounded_and_then_the_problem_is_reported(client, db, waits):
    _authorise(client, db, Scope.people_write)
    unavailable = _through(
        client,
        lambda request: _problem(503, "Service unavailable", "Upgrading.", **{"Retry-After": "2"}),
    )

    with pytest.raises(sync.HavenError, match="503 Service unavailable") as failed:
        sync.push_roster(unavailable, [_pupil(1)])

    assert "Upgrading." in str(failed.value)
    assert waits == [2.0] * sync.MAX_RETRIES
    assert db.exec(select(Person)).all() == []


def test_a_refused_pull_is_reported_and_the_state_file_is_not_advanced(
    client, db, tmp_path, monkeypatch, capsys
):
    raw, _token = make_token(db, Scope.people_write)  # no incidents:read
    monkeypatch.setenv("HAVEN_TOKEN", raw)
    state_file = tmp_path / "sync-state.json"
    state_file.write_text('{"since": "2026-09-01T00:00:00Z", "seen": {}}\n')
    before = state_file.read_text()

    argv = ["--base-url", "https://testserver", "pull-incidents", "--state-file", str(state_file)]
    code = sync.main(argv, client)

    assert code == 1
    captured = capsys.readouterr()
    assert "Haven refused GET /api/v1/incidents: 403 Forbidden" in captured.err
    assert "lacks the 'incidents:read' scope" in captured.err
    assert captured.out == ""
    assert state_file.read_text() == before


def test_a_pull_that_fails_part_way_writes_nothing(client, db, tmp_path, monkeypatch, capsys):
    raw = _authorise(client, db, Scope.incidents_read)
    monkeypatch.setenv("HAVEN_TOKEN", raw)
    for n in range(3):
        make_incident(db, title=f"Incident {n}")

    def fail_second_page(request: httpx.Request):
        if "cursor" in request.url.params:
            return _problem(422, "Invalid input", "The cursor is not one Haven gave out.")
        return None

    state_file, output = tmp_path / "sync-state.json", tmp_path / "changed.jsonl"
    argv = [
        *("--base-url", "https://testserver", "pull-incidents"),
        *("--state-file", str(state_file), "--output", str(output), "--page-size", "2"),
    ]
    assert sync.main(argv, _through(client, fail_second_page)) == 1
    assert "The cursor is not one Haven gave out." in capsys.readouterr().err
    assert not state_file.exists() and not output.exists()

    # The next run, with Haven answering, writes every incident and then the state.
    assert sync.main(argv, client) == 0
    lines = output.read_text().splitlines()
    assert len(lines) == 3
    assert {json.loads(line)["title"] for line in lines} == {f"Incident {n}" for n in range(3)}
    assert set(json.loads(state_file.read_text())) == {"since", "seen"}
    assert db.exec(select(Incident)).all()  # the pulls changed nothing


def test_the_token_comes_from_a_file_or_the_environment_never_an_argument(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("HAVEN_TOKEN", raising=False)
    assert (
        sync.main(["--base-url", "https://h.example", "pull-incidents", "--state-file", "s"]) == 2
    )
    assert "HAVEN_TOKEN" in capsys.readouterr().err
    token_file = tmp_path / "token"
    token_file.write_text("hvn_example\n")
    token_file.chmod(0o600)
    assert sync.read_token(token_file) == "hvn_example"
    with pytest.raises(SystemExit):
        sync.parse_args(["--token", "hvn_x", "--base-url", "https://h.example", "pull-incidents"])
