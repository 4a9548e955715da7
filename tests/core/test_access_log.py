"""The server log: one line a request, with its route and never its query string.

Searches carry a pupil's name in the query string, and the log is read by whoever looks after
the server: Haven, run as `haven serve` runs it, must not write the name there."""

import logging
from pathlib import Path

from sqlmodel import Session

from app.auth.models import Role, Scope
from app.core.middleware import access_log
from tests.factories import make_person, make_policy, make_token, make_user, sign_in
from tests.processes import HavenProcess

FORENAME, SURNAME = "Philippa", "Quarrendon"
CHECKOUT = Path(__file__).resolve().parents[2]


def test_searches_for_a_pupil_leave_no_name_in_the_server_log(committed_engine, tmp_path):
    with Session(committed_engine, expire_on_commit=False) as db:
        make_person(db, forename=FORENAME, surname=SURNAME)
        dsl, admin = make_user(db, role=Role.dsl), make_user(db, role=Role.admin)
        raw_token, _ = make_token(db, Scope.incidents_read)
        policy_id = make_policy(db).id
        db.commit()
    url = committed_engine.url.render_as_string(hide_password=False)
    # Development mode only so that the session cookie travels over plain http to 127.0.0.1.
    haven = HavenProcess(database_url=url, workdir=tmp_path, dev="true", log_level="info")
    haven.env["PYTHONPATH"] = str(CHECKOUT)  # this checkout's Haven, whatever is installed
    haven.start()
    name = f"{FORENAME} {SURNAME}"
    answers = []
    try:
        with haven.client() as lead, haven.client() as administrator, haven.client() as mis:
            sign_in(lead, dsl)
            sign_in(administrator, admin)
            answers += [
                lead.get("/incidents", params={"q": name}),
                lead.get(f"/policies/{policy_id}", params={"pupil_q": name}),
                administrator.get("/admin/people", params={"q": name}),
                mis.get(
                    "/api/v1/incidents",
                    params={"q": name},
                    headers={"Authorization": f"Bearer {raw_token}"},
                ),
                lead.get("/incidents/999999", params={"q": SURNAME}),
            ]
    finally:
        haven.stop()
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 404]
    assert SURNAME in answers[2].text  # the search found the pupil
    log = haven.log
    assert SURNAME not in log and FORENAME not in log, log
    assert "?" not in "".join(line for line in log.splitlines() if "haven.access" in line)
    for answer, line in zip(
        answers,
        (
            "GET /incidents 200",
            "GET /policies/{policy_id} 200",
            "GET /admin/people 200",
            "GET /api/v1/incidents 200",
            "GET /incidents/{incident_id} 404",
        ),
        strict=True,
    ):
        request_id = answer.headers["X-Request-ID"]
        assert any(line in row and f"request={request_id}" in row for row in log.splitlines()), (
            line,
            log,
        )


def test_each_request_is_logged_with_its_route_status_duration_and_id(client, caplog):
    with caplog.at_level(logging.INFO, logger=access_log.name):
        answer = client.get("/incidents/42?q=Sam+Smith", headers={"X-Request-ID": "check-1"})
        client.get("/static/css/haven.css")
    lines = [r.getMessage() for r in caplog.records if r.name == access_log.name]
    assert answer.status_code == 303  # to sign in
    assert lines[0].startswith("GET /incidents/{incident_id} 303 ")
    assert lines[0].endswith("ms request=check-1")
    assert "Sam" not in " ".join(lines)
    assert lines[1].startswith("GET /static/css/haven.css 200 ")
