"""Haven's OpenAPI document: FastAPI's, completed with what an API client needs to rely on.

FastAPI documents the answers a route returns when all goes well. Every /api/v1 operation can
also answer with a problem (RFC 9457, `application/problem+json`): a missing or bad token (401),
a token without the scope (403), invalid input (422), too many requests (429), and, depending on
the operation, a body that cannot be read (400), an unknown resource (404), a reused
Idempotency-Key (409), a body over the size limit (413), a stale `If-Match` (412) or an
unchanged resource (304). `build_openapi` adds those answers where the routes leave them out,
replaces FastAPI's own validation-error schema with the `Problem` schema, says in an operation's
422 what else it refuses where the rule is one JSON Schema cannot state (REFUSALS), and adds
request examples and the links between operations that clients (and stateful API tests) follow
from a created resource to its other operations.
"""

import copy
import re
from typing import Any

from fastapi import FastAPI

from app.core.error_handlers import PROBLEM_JSON

API_PREFIX = "/api/v1/"
PROBLEM_REF = "#/components/schemas/Problem"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "What went wrong, as RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {
            "type": "string",
            "description": "A URI for the kind of problem; `about:blank` when the status says all",
            "examples": ["about:blank"],
        },
        "title": {
            "type": "string",
            "description": "A short summary of the kind of problem",
            "examples": ["Invalid input"],
        },
        "status": {
            "type": "integer",
            "minimum": 100,
            "maximum": 599,
            "description": "The HTTP status code",
            "examples": [422],
        },
        "detail": {
            "type": "string",
            "description": "What happened to this request, for people",
            "examples": ["The request has invalid fields."],
        },
        "errors": {
            "type": "array",
            "description": "The fields at fault, for invalid input",
            "items": {
                "title": "FieldProblem",
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {
                        "type": "string",
                        "description": "Where: a body field (`people.0.upn`), or a parameter "
                        "(`query.limit`, `header.idempotency-key`)",
                    },
                    "message": {"type": "string", "description": "What is wrong with it"},
                },
            },
        },
    },
}

# Status -> (description, extra response headers). The order is the order in the document.
PROBLEMS: dict[str, tuple[str, dict[str, Any]]] = {
    "400": ("The body could not be read: it is not JSON, or not a multipart form", {}),
    "401": (
        "No API token was sent, or it is not valid, has expired or was revoked",
        {
            "WWW-Authenticate": {
                "description": "`Bearer`: send the token as `Authorization: Bearer hvn_...`",
                "schema": {"type": "string"},
            }
        },
    ),
    "403": ("The token lacks the scope this operation needs", {}),
    "404": ("There is no such resource in this school", {}),
    "409": (
        "The Idempotency-Key was used before with another body, or a request with it is "
        "still being handled; or the change conflicts with the resource's state",
        {},
    ),
    "412": ("The resource changed since the `If-Match` ETag was read", {}),
    "413": ("The request body is over the size limit", {}),
    "422": ("The request has invalid fields: `errors` says which and why", {}),
    "429": (
        "The token made too many requests: wait, then send the request again",
        {
            "Retry-After": {
                "description": "How many seconds to wait before sending the request again",
                "schema": {"type": "integer", "minimum": 0},
            }
        },
    ),
    "503": (
        "Haven cannot reach its database just now. Send the request again after the wait "
        "`Retry-After` gives (with the same `Idempotency-Key`, if it had one)",
        {
            "Retry-After": {
                "description": "How many seconds to wait before sending the request again",
                "schema": {"type": "integer", "minimum": 0},
            }
        },
    ),
    "507": ("The evidence store is full: nothing was saved", {}),
}

# What else an operation refuses with 422 (or 412) when a request is valid by the schema: rules
# that depend on what Haven holds, or on the time, which JSON Schema cannot state. Each is added
# to the operation's 422 description.
REFUSALS: dict[str, str] = {
    "createIncident": "a `people[].person_id` that is not someone on the school's roster; an "
    "`occurred_at` in the future",
    "updateIncident": "a status change the incident's lifecycle does not allow (a closed "
    "incident needs a reason to reopen); an `assigned_to` that is not an active DSL or deputy; "
    "and 412 for an `If-Match` that is not the incident's current ETag",
    "createChecklistRuns": "`user_ids` that are not active accounts of the school; a checklist "
    "that is not active or is an incident playbook; a `due_at` that is not in the future",
    "setChecklistItem": "an `item_id` that is not an item of the run's checklist",
    "createEscalationRule": "a clause whose operator or values do not fit its field",
    "createWebhookEndpoint": "a URL that is not https, or whose host name does not resolve to a "
    "public address (an email address for the email format)",
    "addPolicyVersion": "a `review_due` that is not after `effective_from`",
    "publishPolicyVersion": "a version that has not been approved",
    "addEvidence": "a file that is not really a PNG, JPEG, WebP or PDF; a `captured_at` in the "
    "future",
    "syncPeople": "an `external_id` sent twice in one request; a UPN for someone who is not a "
    "pupil; an email address without a deliverable form",
}

ETAG_HEADER: dict[str, Any] = {
    "description": "The version of the resource, for `If-None-Match` and `If-Match`",
    "schema": {"type": "string"},
}

REPLAYED_HEADER: dict[str, Any] = {
    "description": "`true` when this is the stored answer to an earlier request with the same "
    "Idempotency-Key",
    "schema": {"type": "string", "enum": ["true"]},
}

# Request examples for schemas whose models are maintained outside this module's reach.
SCHEMA_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "PeopleSync": [
        {
            "people": [
                {
                    "external_id": "MIS-10423",
                    "kind": "pupil",
                    "forename": "Sam",
                    "surname": "Example",
                    "year_group": "Year 8",
                    "registration_group": "8B",
                    "upn": "A123456789012",
                },
                {
                    "external_id": "MIS-STAFF-17",
                    "kind": "staff",
                    "forename": "Alex",
                    "surname": "Teacher",
                    "email": "a.teacher@school.example",
                },
            ],
            "deactivate_missing": False,
        }
    ],
}

# Links from an operation's success answer to the operations that act on what it made:
# (source operationId, status) -> {link name: link object}.
LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("createIncident", "201"): {
        "GetIncident": {
            "operationId": "getIncident",
            "parameters": {"incident_id": "$response.body#/id"},
            "description": "The incident just reported",
        },
        "UpdateIncident": {
            "operationId": "updateIncident",
            "parameters": {"incident_id": "$response.body#/id"},
            "description": "Change the incident just reported",
        },
        "ListTimeline": {
            "operationId": "listTimeline",
            "parameters": {"incident_id": "$response.body#/id"},
            "description": "The chronology of the incident just reported",
        },
        "AddTimelineEntry": {
            "operationId": "addTimelineEntry",
            "parameters": {"incident_id": "$response.body#/id"},
            "description": "Add a note, decision or contact to the incident just reported",
        },
    },
    ("listChecklists", "200"): {
        "CreateChecklistRuns": {
            "operationId": "createChecklistRuns",
            "requestBody": {
                "template_id": "$response.body#/data/0/id",
                "roles": ["staff"],
                "user_ids": [],
                "due_at": None,
            },
            "description": "Give the first checklist to every member of staff",
        },
    },
    ("createChecklistRuns", "201"): {
        "GetChecklistRun": {
            "operationId": "getChecklistRun",
            "parameters": {"run_id": "$response.body#/data/0/id"},
            "description": "The first of the runs just made",
        },
        "SetChecklistItem": {
            "operationId": "setChecklistItem",
            "parameters": {"run_id": "$response.body#/data/0/id"},
            "description": "Mark an item of the first run just made",
        },
    },
    ("createPolicy", "201"): {
        "AddPolicyVersion": {
            "operationId": "addPolicyVersion",
            "parameters": {"policy_id": "$response.body#/id"},
            "description": "Add a draft version to the policy just made",
        },
        "ListPolicyAcknowledgements": {
            "operationId": "listPolicyAcknowledgements",
            "parameters": {"policy_id": "$response.body#/id"},
            "description": "Who has acknowledged the policy just made",
        },
    },
    ("addPolicyVersion", "201"): {
        "PublishPolicyVersion": {
            "operationId": "publishPolicyVersion",
            "parameters": {
                "policy_id": "$request.path.policy_id",
                "number": "$response.body#/number",
            },
            "description": "Publish the version just added (once approved)",
        },
    },
    ("createWebhookEndpoint", "201"): {
        "TestWebhookEndpoint": {
            "operationId": "testWebhookEndpoint",
            "parameters": {"endpoint_id": "$response.body#/id"},
            "description": "Send a test event to the endpoint just added",
        },
        "ListWebhookDeliveries": {
            "operationId": "listWebhookDeliveries",
            "parameters": {"endpoint_id": "$response.body#/id"},
            "description": "The deliveries to the endpoint just added",
        },
    },
}

NUL_NOTE = "Text may not contain NUL (U+0000) characters: a request with one is answered 422.\n"

_CAMEL_CASE = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The document served at /api/openapi.json, built once per application."""
    if app.openapi_schema is None:
        app.openapi_schema = complete(FastAPI.openapi(app))
    return app.openapi_schema


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of FastAPI's document with the additions described at the top of this module."""
    document = copy.deepcopy(document)
    info = document.setdefault("info", {})
    info["description"] = info.get("description", "") + NUL_NOTE
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    operation_ids = {
        operation.get("operationId")
        for item in document.get("paths", {}).values()
        for operation in item.values()
    }
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if path.startswith(API_PREFIX):
                _document_operation(path, method, operation, operation_ids)
            else:
                _drop_validation_error(operation)
    for name, examples in SCHEMA_EXAMPLES.items():
        if name in schemas:
            schemas[name].setdefault("examples", examples)
    if not _uses(document, "#/components/schemas/HTTPValidationError"):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


def _document_operation(
    path: str, method: str, operation: dict[str, Any], operation_ids: set[str | None]
) -> None:
    operation_id = operation.get("operationId", "")
    if not _CAMEL_CASE.match(operation_id):
        raise ValueError(f"{method.upper()} {path}: give the route a camelCase operation_id")
    if not operation.get("summary") or not operation.get("tags"):
        raise ValueError(f"{method.upper()} {path}: give the route a summary and tags")

    parameters = operation.get("parameters", [])
    for parameter in parameters:
        _drop_null_from_parameter(parameter)
    headers = {p["name"].lower() for p in parameters if p.get("in") == "header"}
    has_path_parameters = any(p.get("in") == "path" for p in parameters)
    single_resource_get = method == "get" and path.endswith("}")

    responses = operation.setdefault("responses", {})
    _drop_validation_error(operation)
    wanted = ["401", "403", "422", "429", "503"]
    if has_path_parameters:
        wanted.append("404")
    if "idempotency-key" in headers:
        wanted.append("409")
    if "requestBody" in operation:
        wanted += ["400", "413"]
    if method == "patch":
        wanted.append("412")
    for status in PROBLEMS:  # in the document's order
        if status in wanted or status in responses:
            _add_problem(responses, status)
    if operation_id in REFUSALS:
        responses["422"]["description"] += f". Also refused: {REFUSALS[operation_id]}"

    if "idempotency-key" in headers:
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {})["Idempotent-Replayed"] = REPLAYED_HEADER

    if single_resource_get:
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {}).setdefault("ETag", ETAG_HEADER)
        responses.setdefault(
            "304",
            {
                "description": "Not modified: the resource still has the `If-None-Match` ETag",
                "headers": {"ETag": ETAG_HEADER},
            },
        )

    for (source, status), links in LINKS.items():
        if source != operation_id or status not in responses:
            continue
        present = {
            name: link for name, link in links.items() if link["operationId"] in operation_ids
        }
        if present:
            responses[status].setdefault("links", {}).update(copy.deepcopy(present))

    document_order = sorted(responses, key=lambda status: (not status.startswith("2"), status))
    operation["responses"] = {status: responses[status] for status in document_order}


def _add_problem(responses: dict[str, Any], status: str) -> None:
    description, headers = PROBLEMS[status]
    response = responses.setdefault(status, {"description": description})
    response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    if headers:
        response.setdefault("headers", {}).update(copy.deepcopy(headers))


def _drop_validation_error(operation: dict[str, Any]) -> None:
    """FastAPI's 422 (`HTTPValidationError`) is not what Haven sends: drop it."""
    response = operation.get("responses", {}).get("422")
    if response and _uses(response, "#/components/schemas/HTTPValidationError"):
        del operation["responses"]["422"]


def _drop_null_from_parameter(parameter: dict[str, Any]) -> None:
    """An optional query or header parameter is left out, never sent as null: say so plainly,
    so that e.g. an enumeration parameter is documented as the enumeration itself."""
    schema = parameter.get("schema", {})
    options = schema.get("anyOf")
    if not options:
        return
    others = [option for option in options if option != {"type": "null"}]
    if len(others) == 1 and len(others) < len(options):
        del schema["anyOf"]
        schema.update(others[0])  # OpenAPI 3.1 allows `$ref` beside `title` and `description`


def _uses(node: Any, reference: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == reference or any(_uses(v, reference) for v in node.values())
    if isinstance(node, list):
        return any(_uses(v, reference) for v in node)
    return False
