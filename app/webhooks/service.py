"""Webhook endpoints and the outbox. The only module that queries them."""

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select, update

from app.audit.service import Actor, record_event
from app.core.db import get_for_school
from app.core.errors import InvalidInput
from app.core.types import utcnow
from app.webhooks import email, payloads, signing
from app.webhooks.models import (
    DeliveryAttempt,
    EndpointFormat,
    EndpointIn,
    EventType,
    MessageStatus,
    OutboxMessage,
    WebhookEndpoint,
)

# The Standard Webhooks schedule: after each failure, wait this long before the next try.
RETRY_DELAYS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
]
ROTATION_OVERLAP = timedelta(hours=24)
LEASE = timedelta(seconds=60)


def _audit(session: Session, actor: Actor, action: str, endpoint: WebhookEndpoint, **detail):
    record_event(
        session=session,
        actor=actor,
        action=action,
        school_id=endpoint.school_id,
        entity_type="webhook_endpoint",
        entity_id=endpoint.id,
        detail=detail,
    )


# Endpoints ---------------------------------------------------------------------------------


def check_destination(data: EndpointIn, check_url) -> str:
    """The normalised destination; `check_url` is the SSRF guard for web addresses."""
    url = data.url.strip()
    if data.format == EndpointFormat.email:
        address = url.removeprefix("mailto:")
        if not email.is_valid_address(address):
            raise InvalidInput(
                "An email endpoint needs one email address, like dsl@school.example.",
                errors=[{"field": "url", "message": "not an email address"}],
            )
        return address
    check_url(url)
    return url


def create_endpoint(
    *, session: Session, school_id: int, data: EndpointIn, actor: Actor, check_url
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        school_id=school_id,
        url=check_destination(data, check_url),
        description=data.description.strip(),
        events=sorted({event.value for event in data.events}),
        format=data.format,
        secret=signing.new_secret(),
    )
    session.add(endpoint)
    session.flush()
    _audit(session, actor, "webhook_endpoint.created", endpoint, format=endpoint.format.value)
    return endpoint


def get_endpoint(*, session: Session, school_id: int, endpoint_id: int) -> WebhookEndpoint:
    return get_for_school(session, WebhookEndpoint, endpoint_id, school_id, "webhook endpoint")


def list_endpoints(*, session: Session, school_id: int) -> list[WebhookEndpoint]:
    return list(
        session.exec(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.school_id == school_id)
            .order_by(WebhookEndpoint.id)
        ).all()
    )


def rotate_secret(*, session: Session, endpoint: WebhookEndpoint, actor: Actor) -> str:
    """A new secret; the old one keeps signing too for a day, so receivers can switch over."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = utcnow() + ROTATION_OVERLAP
    endpoint.secret = signing.new_secret()
    endpoint.updated_at = utcnow()
    session.add(endpoint)
    _audit(session, actor, "webhook_endpoint.secret_rotated", endpoint)
    return endpoint.secret


def set_active(
    *, session: Session, endpoint: WebhookEndpoint, active: bool, reason: str, actor: Actor
) -> None:
    endpoint.is_active = active
    endpoint.disabled_reason = "" if active else reason
    endpoint.updated_at = utcnow()
    session.add(endpoint)
    _audit(session, actor, "webhook_endpoint." + ("enabled" if active else "disabled"), endpoint)


def secrets_in_use(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    in_use = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_until
        and endpoint.previous_secret_until > now
    ):
        in_use.append(endpoint.previous_secret)
    return in_use


# The outbox -------------------------------------------------------------------------------------


def enqueue(
    *,
    session: Session,
    school_id: int,
    event_type: EventType,
    data: dict,
    endpoint_id: int | None = None,
) -> list[OutboxMessage]:
    """One message per active endpoint that wants the event, in the caller's transaction."""
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.school_id == school_id, WebhookEndpoint.is_active.is_(True)
    )
    if endpoint_id is not None:
        query = query.where(WebhookEndpoint.id == endpoint_id)
    now = utcnow()
    messages = []
    for endpoint in session.exec(query).all():
        if endpoint_id is None and event_type.value not in endpoint.events:
            continue
        message = OutboxMessage(
            school_id=school_id,
            endpoint_id=endpoint.id,
            webhook_id=signing.new_webhook_id(),
            event_type=event_type,
            payload=payloads.envelope(event_type, data, now),
            next_attempt_at=now,
            created_at=now,
        )
        session.add(message)
        messages.append(message)
    session.flush()
    return messages


def claim_due(
    *, session: Session, now: datetime, limit: int = 20, skip_endpoints: Iterable[int] = ()
) -> dict[int, list[int]]:
    """Take a lease on due messages, except those for `skip_endpoints` (being delivered to
    already); their ids by endpoint, oldest first. Several workers on PostgreSQL never take the
    same one."""
    query = (
        select(OutboxMessage.id, OutboxMessage.endpoint_id)
        .where(
            OutboxMessage.status == MessageStatus.pending,
            OutboxMessage.next_attempt_at <= now,
            (OutboxMessage.lease_until.is_(None)) | (OutboxMessage.lease_until < now),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if skipped := sorted(skip_endpoints):
        query = query.where(col(OutboxMessage.endpoint_id).not_in(skipped))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed: dict[int, list[int]] = {}
    for message_id, endpoint_id in session.exec(query).all():
        claimed.setdefault(endpoint_id, []).append(message_id)
    if claimed:
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_([i for ids in claimed.values() for i in ids]))
            .values(lease_until=now + LEASE)
        )
    session.commit()
    return claimed


@dataclass
class Outgoing:
    message_id: int
    webhook_id: str
    endpoint_format: EndpointFormat
    url: str
    body: str
    headers: dict
    event: dict


def prepare(
    *, session: Session, message_id: int, now: datetime, base_url: str = ""
) -> Outgoing | None:
    """The message as it is sent now: its link made with `base_url`, signed for the endpoint."""
    message = session.get(OutboxMessage, message_id)
    endpoint = session.get(WebhookEndpoint, message.endpoint_id)
    if message.status != MessageStatus.pending:
        return None
    if not endpoint.is_active:
        message.status = MessageStatus.failed
        message.last_error = "endpoint disabled"
        message.lease_until = None
        session.add(message)
        session.commit()
        return None
    event = payloads.for_receiver(message.payload, base_url)
    body = json.dumps(payloads.formatted_body(event, endpoint.format), separators=(",", ":"))
    headers = signing.headers_for(secrets_in_use(endpoint, now), message.webhook_id, now, body)
    return Outgoing(
        message.id,
        message.webhook_id,
        endpoint.format,
        endpoint.url,
        body,
        headers,
        event,
    )


@dataclass
class Outcome:
    status_code: int | None = None
    error: str = ""
    retry_after: timedelta | None = None
    permanent: bool = False  # e.g. 410 Gone, or a mailbox that does not exist
    duration_ms: int = 0

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def record_outcome(
    *, session: Session, message_id: int, outcome: Outcome, now: datetime, jitter=random.random
) -> OutboxMessage:
    message = session.get(OutboxMessage, message_id)
    session.add(
        DeliveryAttempt(
            message_id=message.id,
            attempted_at=now,
            status_code=outcome.status_code,
            error=outcome.error[:300],
            duration_ms=outcome.duration_ms,
        )
    )
    message.attempts += 1
    message.last_status_code = outcome.status_code
    message.last_error = outcome.error[:300]
    message.lease_until = None
    if outcome.delivered:
        message.status = MessageStatus.delivered
        message.delivered_at = now
    elif outcome.permanent:
        message.status = MessageStatus.failed
        endpoint = session.get(WebhookEndpoint, message.endpoint_id)
        if outcome.status_code == 410:
            endpoint.is_active = False
            endpoint.disabled_reason = "The receiver answered 410 Gone."
            session.add(endpoint)
            record_event(
                session=session,
                actor=Actor(),
                action="webhook_endpoint.disabled",
                school_id=endpoint.school_id,
                entity_type="webhook_endpoint",
                entity_id=endpoint.id,
                detail={"status": 410},
            )
    elif message.attempts > len(RETRY_DELAYS):
        message.status = MessageStatus.failed
        record_event(
            session=session,
            actor=Actor(),
            action="webhook.exhausted",
            school_id=message.school_id,
            entity_type="outbox_message",
            entity_id=message.id,
            detail={"attempts": message.attempts},
        )
    else:
        delay = RETRY_DELAYS[message.attempts - 1]
        delay = delay + delay * 0.1 * jitter()  # spread retries so receivers are not stampeded
        if outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        message.next_attempt_at = now + delay
    session.add(message)
    session.commit()
    return message


def retry_now(*, session: Session, school_id: int, message_id: int, actor: Actor) -> OutboxMessage:
    message = get_for_school(session, OutboxMessage, message_id, school_id, "delivery")
    if message.status == MessageStatus.delivered:
        raise InvalidInput("This message was delivered already.")
    message.status = MessageStatus.pending
    message.next_attempt_at = utcnow()
    message.lease_until = None
    session.add(message)
    record_event(
        session=session,
        actor=actor,
        action="webhook.retried",
        school_id=school_id,
        entity_type="outbox_message",
        entity_id=message.id,
    )
    return message


def deliveries(
    *, session: Session, endpoint: WebhookEndpoint, limit: int = 100
) -> list[OutboxMessage]:
    return list(
        session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.endpoint_id == endpoint.id)
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        ).all()
    )


def failed_count(*, session: Session, school_id: int) -> int:
    return len(
        session.exec(
            select(OutboxMessage.id).where(
                OutboxMessage.school_id == school_id, OutboxMessage.status == MessageStatus.failed
            )
        ).all()
    )
