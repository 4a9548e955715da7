"""The JSON API keeps the contract it publishes at /api/openapi.json.

Schemathesis reads the document and sends every /api/v1 operation (and the health probes)
requests made from it, valid and invalid, with a token that has every scope, and checks each
answer against the document: no server error, a documented status code, content type and
headers (`Allow` on every 405), a body matching its schema, invalid input refused, valid input
accepted (but where a rule depends on what Haven holds: see REFUSALS), and no answer without a
valid token. A stateful run then follows the document's links (report an incident, then read,
change and add to it; give a checklist, then read and tick it; add a policy, then version and
publish it; add a webhook endpoint, then test it). Both run on SQLite and PostgreSQL.
"""

import functools
import socket

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis import checks

from app.auth.models import Role, Scope
from app.core import http
from app.core.openapi import REFUSALS
from tests.factories import api_headers, make_user

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.positive_data_acceptance,
    checks.missing_required_header,
    checks.unsupported_method,
    checks.allow_header_conformance,
    checks.ignored_auth,
]

SETTINGS = hypothesis.settings(
    max_examples=25,
    derandomize=True,  # the same requests every run
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def settings(settings):
    # One token sends thousands of requests here: keep the per-token rate limit out of the way.
    return settings.model_copy(update={"api_rate_limit": "1000000/minute"})


@pytest.fixture
def bearer(db) -> dict[str, str]:
    make_user(db, role=Role.staff)  # someone to give checklists to
    return api_headers(db, *Scope)


@pytest.fixture(autouse=True)
def no_dns(monkeypatch):
    """A webhook endpoint's host is looked up when it is saved. Here every name resolves to one
    public address, without asking DNS (and nothing connects to it: the worker is off)."""

    def resolve(host, port, *args):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(
        "app.webhooks.dependencies.check_url", functools.partial(http.check_url, resolve=resolve)
    )


@pytest.fixture
def api_schema(app):
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    # Haven refuses NUL in any text (422; see tests/core/test_nul.py), which a schema cannot say
    # of every string without noise: generate none.
    schema.config.generation.update(allow_x00=False)
    # The token is sent with every request (and taken away by `ignored_auth`), not generated.
    schema.config.generation.update(with_security_parameters=False)
    return schema


# The API, and the health probes beside it.
CONTRACT_PATHS = r"^/api/v1/|^/(healthz|readyz)$"
schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex=CONTRACT_PATHS)


def _excluded_checks(case) -> list:
    # Valid requests to these may still be refused with 422, rightly: each rule depends on what
    # Haven holds or on the time, which JSON Schema cannot state (the operation's 422 says so).
    if case.operation.definition.raw.get("operationId") in REFUSALS:
        return [checks.positive_data_acceptance]
    return []


@schema.parametrize()
@SETTINGS
def test_every_operation_keeps_its_contract(case, bearer):
    case.call_and_validate(headers=bearer, checks=CHECKS, excluded_checks=_excluded_checks(case))


def test_linked_operations_keep_their_contract(api_schema, bearer):
    machine = api_schema.include(path_regex=CONTRACT_PATHS).as_state_machine()

    class Links(machine):
        def get_call_kwargs(self, case):
            return {"headers": bearer}

        def validate_response(self, response, case, additional_checks=(), **kwargs):
            case.validate_response(
                response,
                checks=[*CHECKS, checks.ensure_resource_availability, checks.use_after_free],
                excluded_checks=_excluded_checks(case),
                headers=bearer,
            )

    Links.run(
        settings=hypothesis.settings(
            max_examples=30,
            stateful_step_count=6,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
