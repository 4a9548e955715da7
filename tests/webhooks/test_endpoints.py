"""Endpoints are managed by administrators on a page and through the API."""

import re

from sqlmodel import select

from app.audit.service import SYSTEM
from app.auth.models import Role, Scope
from app.webhooks import service
from app.webhooks.models import EndpointIn, MessageStatus, OutboxMessage, WebhookEndpoint
from tests.factories import api_headers, make_incident, make_user, page_csrf, sign_in


def test_the_api_adds_an_endpoint_and_shows_its_secret_once(client, db):
    headers = api_headers(db, Scope.webhooks_admin)
    created = client.post(
        "/api/v1/webhook-endpoints",
        headers=headers,
        json={
            "url": "https://hooks.example.org/haven",
            "description": "DSL relay",
            "events": ["incident.escalated"],
            "format": "standard",
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    listed = client.get("/api/v1/webhook-endpoints", headers=headers).json()
    assert "secret" not in listed["data"][0]
    test = client.post(f"/api/v1/webhook-endpoints/{body['id']}/test", headers=headers)
    assert test.status_code == 202
    deliveries = client.get(
        f"/api/v1/webhook-endpoints/{body['id']}/deliveries", headers=headers
    ).json()["data"]
    assert [d["event_type"] for d in deliveries] == ["webhook.test"]


def test_bad_endpoints_are_refused_and_nothing_is_written(client, db):
    headers = api_headers(db, Scope.webhooks_admin)
    for body in [
        {"url": "http://hooks.example.org/", "events": ["incident.escalated"]},
        {"url": "https://hooks.example.org/", "events": []},
        {"url": "https://hooks.example.org/", "events": ["incident.deleted"]},
        {"url": "https://hooks.example.org/", "events": ["webhook.test"], "format": "pigeon"},
        {"url": "not an address", "events": ["webhook.test"], "format": "email"},
        {"url": "https://hooks.example.org/", "events": ["webhook.test"], "colour": "red"},
    ]:
        response = client.post("/api/v1/webhook-endpoints", headers=headers, json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    assert db.exec(select(WebhookEndpoint)).all() == []


def test_an_email_endpoint_takes_an_address(client, db):
    response = client.post(
        "/api/v1/webhook-endpoints",
        headers=api_headers(db, Scope.webhooks_admin),
        json={
            "url": "mailto:dsl@school.example",
            "events": ["incident.escalated"],
            "format": "email",
        },
    )
    assert response.status_code == 201 and response.json()["url"] == "dsl@school.example"


def test_retry_puts_a_failed_delivery_back_in_the_queue(client, db):
    endpoint = service.create_endpoint(
        session=db,
        school_id=make_user(db).school_id,
        actor=SYSTEM,
        check_url=lambda url: None,
        data=EndpointIn(url="https://hooks.example.org/", events=["incident.escalated"]),
    )
    make_incident(db, content_flags=["abusive"])
    message = db.exec(select(OutboxMessage)).one()
    message.status = MessageStatus.failed
    db.add(message)
    db.commit()
    response = client.post(
        f"/api/v1/webhook-deliveries/{message.id}/retry",
        headers=api_headers(db, Scope.webhooks_admin),
    )
    assert response.status_code == 200 and response.json()["status"] == "pending"
    assert endpoint.id == message.endpoint_id


def test_the_admin_page_adds_rotates_and_turns_off(client, db):
    sign_in(client, make_user(db, role=Role.admin))
    token = page_csrf(client, "/admin/webhooks")
    added = client.post(
        "/admin/webhooks",
        data={
            "csrf_token": token,
            "url": "https://hooks.example.org/in",
            "format": "teams",
            "events": ["incident.escalated", "incident.updated"],
            "description": "Teams channel",
        },
    )
    assert added.status_code == 201
    secret = re.search(r'<code id="new-secret">(whsec_[^<]+)</code>', added.text).group(1)
    assert secret not in client.get("/admin/webhooks").text
    endpoint = db.exec(select(WebhookEndpoint)).one()
    rotated = client.post(f"/admin/webhooks/{endpoint.id}/rotate", data={"csrf_token": token})
    new = re.search(r'<code id="new-secret">(whsec_[^<]+)</code>', rotated.text).group(1)
    db.refresh(endpoint)
    assert new != secret and endpoint.previous_secret == secret
    refused = client.post(
        "/admin/webhooks",
        data={
            "csrf_token": token,
            "url": "http://insecure.example.org/",
            "events": ["webhook.test"],
        },
    )
    assert refused.status_code == 422 and "https://" in refused.text
    off = client.post(
        f"/admin/webhooks/{endpoint.id}/active", data={"csrf_token": token, "is_active": "false"}
    )
    assert off.status_code == 303
    db.refresh(endpoint)
    assert endpoint.is_active is False


def test_the_dsl_home_page_shows_undelivered_notices(client, db):
    service.create_endpoint(
        session=db,
        school_id=make_user(db).school_id,
        actor=SYSTEM,
        check_url=lambda url: None,
        data=EndpointIn(url="https://hooks.example.org/", events=["incident.escalated"]),
    )
    make_incident(db, content_flags=["abusive"])
    message = db.exec(select(OutboxMessage)).one()
    message.status = MessageStatus.failed
    db.add(message)
    db.commit()
    sign_in(client, make_user(db, role=Role.dsl))
    assert "could not be delivered" in client.get("/").text


def test_private_addresses_are_refused_when_saved(client, db, monkeypatch):
    from app.core import http
    from app.webhooks import dependencies

    def private(host, port, *args, **kwargs):
        return [(2, 1, 6, "", ("10.20.0.7", port or 443))]

    monkeypatch.setattr(
        dependencies,
        "check_url",
        lambda url, *, allow: http.check_url(url, allow=allow, resolve=private),
    )
    for url in [
        "https://lan-relay.school.example/",
        "https://169.254.169.254/latest",
        "https://[::ffff:127.0.0.1]/",
        "https://100.64.0.1/",
    ]:
        response = client.post(
            "/api/v1/webhook-endpoints",
            headers=api_headers(db, Scope.webhooks_admin),
            json={"url": url, "events": ["incident.escalated"]},
        )
        assert response.status_code == 422, url
    assert db.exec(select(WebhookEndpoint)).all() == []
