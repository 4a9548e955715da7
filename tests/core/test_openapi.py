"""The OpenAPI document: valid OpenAPI 3.1, and every API operation documents its problems."""

import re

import pytest
from openapi_spec_validator import validate

API = "/api/v1/"
PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture
def document(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(document):
    for path, item in document["paths"].items():
        if path.startswith(API):
            for method, operation in item.items():
                yield path, method, operation


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_operation_is_named_summarised_and_tagged(document):
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) == len(set(ids))
    for path, method, operation in _operations(document):
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", operation["operationId"]), (method, path)
        assert operation["summary"] and operation["tags"], (method, path)
    health = [op["operationId"] for op in document["paths"]["/healthz"].values()]
    assert health == ["healthz"]


def test_every_operation_documents_the_problems_it_can_answer(document):
    schemas = document["components"]["schemas"]
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "detail"}
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        expected = {"401", "403", "422", "429", "503"}
        if "{" in path:
            expected.add("404")
        if "Idempotency-Key" in headers:
            expected.add("409")
        if "requestBody" in operation:
            expected |= {"400", "413"}
        if method == "patch":
            expected.add("412")
        assert expected <= set(responses), (method, path)
        for status in expected:
            content = responses[status]["content"]
            assert content == {"application/problem+json": {"schema": PROBLEM}}, (method, path)
        assert "Retry-After" in responses["429"]["headers"]
        assert "Retry-After" in responses["503"]["headers"]
        if method == "get" and path.endswith("}"):
            assert "ETag" in responses["304"]["headers"], path
            assert "ETag" in responses["200"]["headers"], path


def test_the_idempotency_key_is_declared_with_its_name_and_meaning(document):
    parameters = document["paths"]["/api/v1/incidents"]["post"]["parameters"]
    (key,) = [p for p in parameters if p["in"] == "header" and p["name"] == "Idempotency-Key"]
    assert "409" in key["description"]


def test_lists_describe_their_paging_and_enumerations_are_named(document):
    parameters = {p["name"]: p for p in document["paths"]["/api/v1/incidents"]["get"]["parameters"]}
    for name in ("limit", "cursor", "updated_since"):
        assert parameters[name]["description"], name
    assert parameters["updated_since"]["schema"]["format"] == "date-time"
    assert parameters["status"]["schema"]["$ref"] == "#/components/schemas/IncidentStatus"
    entry = document["components"]["schemas"]["TimelineEntryIn"]["properties"]["kind"]
    assert entry["$ref"] == "#/components/schemas/WrittenEntryKind"


def test_main_request_bodies_have_examples(document):
    schemas = document["components"]["schemas"]
    for name in (
        "IncidentCreate",
        "IncidentUpdate",
        "TimelineEntryIn",
        "ChecklistRunCreate",
        "ItemCompletionUpdate",
        "PolicyCreate",
        "VersionCreate",
        "EndpointIn",
        "RuleIn",
        "PeopleSync",
    ):
        assert schemas[name]["examples"], name


def test_links_lead_from_what_is_made_to_what_acts_on_it(document):
    created = document["paths"]["/api/v1/incidents"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in created.values()} >= {
        "getIncident",
        "listTimeline",
        "addTimelineEntry",
    }
    assert created["GetIncident"]["parameters"] == {"incident_id": "$response.body#/id"}
    runs = document["paths"]["/api/v1/checklist-runs"]["post"]["responses"]["201"]["links"]
    assert runs["SetChecklistItem"]["parameters"] == {"run_id": "$response.body#/data/0/id"}
