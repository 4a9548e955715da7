"""What the published schema says is accepted is accepted; what else is refused is written in it."""

import re

from app.auth.models import Scope
from app.core.openapi import REFUSALS
from tests.factories import bearer, make_incident, make_token


def _document(client) -> dict:
    return client.get("/api/openapi.json").json()


def test_any_cursor_of_the_published_form_is_a_position_and_others_are_refused(client, db):
    for n in range(3):
        make_incident(db, title=f"Concern {n}")
    raw, _ = make_token(db, Scope.incidents_read)
    headers = bearer(raw)
    (cursor,) = [
        p
        for p in _document(client)["paths"]["/api/v1/incidents"]["get"]["parameters"]
        if p["name"] == "cursor"
    ]
    pattern = cursor["schema"]["pattern"]
    page = client.get("/api/v1/incidents", params={"limit": 2}, headers=headers).json()
    assert [i["title"] for i in page["data"]] == ["Concern 0", "Concern 1"]
    assert re.match(pattern, page["next_cursor"])
    rest = client.get("/api/v1/incidents", params={"cursor": page["next_cursor"]}, headers=headers)
    assert [i["title"] for i in rest.json()["data"]] == ["Concern 2"]
    # made up, but of the published form: a position like any other
    for made_up, titles in (("0.0", 3), ("0.3000000000", 3), ("9999999999999999.9999999999", 0)):
        assert re.match(pattern, made_up)
        answer = client.get("/api/v1/incidents", params={"cursor": made_up}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["data"]) == titles
    # not of that form: refused, saying which parameter
    for wrong in ("WyIyMDI2Il0", "1.2.3", "-1.5", "1.99999999999"):
        refused = client.get("/api/v1/incidents", params={"cursor": wrong}, headers=headers)
        assert refused.status_code == 422, wrong
        assert refused.json()["errors"][0]["field"] == "query.cursor"


def test_what_the_schema_cannot_state_is_written_in_each_422(client):
    operations = {
        operation["operationId"]: operation
        for item in _document(client)["paths"].values()
        for operation in item.values()
    }
    for operation_id, refusal in REFUSALS.items():
        assert refusal in operations[operation_id]["responses"]["422"]["description"]
    assert "host name does not resolve" in REFUSALS["createWebhookEndpoint"]
    body = _document(client)["components"]["schemas"]
    assert "not in the future" in body["IncidentCreate"]["properties"]["occurred_at"]["description"]
    assert "future" in str(body["ChecklistRunCreate"]["properties"]["due_at"]["description"])
    assert (
        "After effective_from" in body["VersionCreate"]["properties"]["review_due"]["description"]
    )


def test_the_health_probes_document_their_answers(client):
    readyz = _document(client)["paths"]["/readyz"]["get"]["responses"]
    assert set(readyz) == {"200", "503"}
    client.app.state.migration_head = "a-newer-revision"
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.json()["reason"] == "migrations pending"
