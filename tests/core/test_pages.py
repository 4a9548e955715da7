"""What every page promises: security headers, full pages or fragments, friendly errors."""

from app.auth.models import Role
from tests.factories import make_user, sign_in


def test_html_responses_carry_strict_security_headers(client):
    response = client.get("/login")
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-request-id"]


def test_htmx_is_configured_safely(client):
    page = client.get("/login").text
    assert '"selfRequestsOnly": true' in page and '"allowEval": false' in page
    assert '"includeIndicatorStyles": false' in page and '"historyCacheSize": 0' in page
    assert "style=" not in page
    assert "<script>" not in page


def test_assets_are_served_locally(client):
    page = client.get("/login").text
    assert "https://" not in page.split("<body")[0]
    assert client.get("/static/vendor/htmx-2.0.11/htmx.min.js").status_code == 200
    assert client.get("/static/vendor/pico-2.1.1/pico.min.css").status_code == 200


def test_unknown_page_gets_a_friendly_html_error(client, db):
    sign_in(client, make_user(db))
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no page at this address." in response.text


def test_wrong_method_is_explained(client):
    response = client.request("DELETE", "/login")
    assert response.status_code == 405


def test_full_page_and_fragment_from_one_template(client, db):
    sign_in(client, make_user(db, role=Role.admin))
    full = client.get("/admin/users")
    fragment = client.get("/admin/users", headers={"HX-Request": "true"})
    boosted = client.get("/admin/users", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in full.text and "<html" in boosted.text
    assert "<html" not in fragment.text and 'id="users-main"' in fragment.text
    assert full.headers["vary"] == "HX-Request"


def test_each_role_has_its_own_home_page(app, db):
    from fastapi.testclient import TestClient

    headings = {
        Role.staff: "Your safeguarding",
        Role.dsl: "Safeguarding",
        Role.deputy_dsl: "Safeguarding",
        Role.slt: "Leadership",
        Role.admin: "Administration",
    }
    for role, heading in headings.items():
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
            sign_in(client, make_user(db, role=role))
            page = client.get("/").text
            assert f">{heading}</h2>" in page, role
            assert ("/admin/users" in page) == (role == Role.admin), role


def test_unexpected_errors_never_show_a_stack_trace(app, db):
    from fastapi.testclient import TestClient

    def explode():
        raise RuntimeError("secret internals")

    app.add_api_route("/api/v1/explode", explode)
    app.add_api_route("/explode", explode)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        api = client.get("/api/v1/explode")
        assert api.status_code == 500
        assert api.headers["content-type"] == "application/problem+json"
        assert api.json()["title"] == "Internal server error"
        page = client.get("/explode")
        assert page.status_code == 500 and "Nothing was saved" in page.text
        for response in (api, page):
            assert "secret internals" not in response.text and "Traceback" not in response.text
