"""Every 405 says which methods the address answers to, on a page, a probe or the API."""

import pytest


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("TRACE", "/healthz", "GET"),
        ("POST", "/readyz", "GET"),
        ("DELETE", "/login", "GET, POST"),
        ("PUT", "/api/v1/incidents", "GET, POST"),
    ],
)
def test_a_method_the_address_does_not_answer_to_is_405_with_allow(client, method, path, allow):
    answer = client.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allow
