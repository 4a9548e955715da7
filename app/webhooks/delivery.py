"""Sending outbox messages: claim, sign, POST (or email), record. At least once, never lost."""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from app.core.http import parse_allow_cidrs, safe_client
from app.core.types import utcnow
from app.webhooks import email, service
from app.webhooks.models import EndpointFormat

log = logging.getLogger("haven.webhooks")
TIMEOUT_SECONDS = 10.0


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=min(int(value), 86400))
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(timedelta(0), at.astimezone(UTC) - now) if at else None


def post(client: httpx.Client, outgoing: service.Outgoing, now: datetime) -> service.Outcome:
    started = time.perf_counter()
    try:
        response = client.post(outgoing.url, content=outgoing.body, headers=outgoing.headers)
    except Exception as exc:  # timeouts, refused connections, refused destinations
        return service.Outcome(
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
    outcome = service.Outcome(
        status_code=response.status_code, duration_ms=int((time.perf_counter() - started) * 1000)
    )
    if response.status_code == 410:
        outcome.permanent = True
        outcome.error = "410 Gone: the endpoint is disabled"
    elif not outcome.delivered:
        outcome.error = f"HTTP {response.status_code}"
        if response.status_code in (429, 503):
            outcome.retry_after = _retry_after(response.headers.get("retry-after"), now)
    return outcome


def deliver_due(
    *,
    engine: Engine,
    client: httpx.Client,
    send_email: Callable[[service.Outgoing], service.Outcome] | None = None,
    now: Callable[[], datetime] = utcnow,
    limit: int = 20,
) -> int:
    """Deliver what is due now; returns how many messages were tried."""
    with Session(engine, expire_on_commit=False) as session:
        ids = service.claim_due(session=session, now=now(), limit=limit)
    for message_id in ids:
        at = now()
        with Session(engine, expire_on_commit=False) as session:
            outgoing = service.prepare(session=session, message_id=message_id, now=at)
        if outgoing is None:
            continue
        if outgoing.endpoint_format == EndpointFormat.email:
            outcome = (
                send_email(outgoing)
                if send_email
                else service.Outcome(error="email is not configured (HAVEN_SMTP_HOST)")
            )
        else:
            outcome = post(client, outgoing, at)
        with Session(engine, expire_on_commit=False) as session:
            service.record_outcome(
                session=session, message_id=message_id, outcome=outcome, now=now()
            )
        log.info(
            "webhook %s: %s",
            outgoing.webhook_id,
            "delivered" if outcome.delivered else outcome.error,
        )
    return len(ids)


def client_for(settings) -> httpx.Client:
    """No redirects followed, a short timeout, and connections only to addresses checked at
    connect time (private ranges only when HAVEN_WEBHOOK_ALLOW_CIDRS allows them)."""
    allow = parse_allow_cidrs(settings.webhook_allow_cidrs) if settings is not None else []
    return safe_client(allow=allow, timeout=TIMEOUT_SECONDS)


def email_sender_for(settings) -> Callable[[service.Outgoing], service.Outcome] | None:
    """Send the thin notice of an email endpoint through the school's SMTP relay."""
    if settings is None or not settings.smtp_host:
        return None
    smtp = email.SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        use_tls=settings.smtp_tls,
        sender=settings.smtp_from,
    )

    def send(outgoing: service.Outgoing) -> service.Outcome:
        started = time.perf_counter()
        subject, body = email.render_notice(outgoing.event, school_name=settings.school_name)
        try:
            email.send_notice(
                smtp, to=outgoing.url, subject=subject, body=body, message_id=outgoing.webhook_id
            )
        except email.EmailFailed as exc:
            return service.Outcome(
                status_code=exc.code,
                error=exc.detail,
                permanent=exc.permanent,
                duration_ms=int((time.perf_counter() - started) * 1000),
            )
        return service.Outcome(
            status_code=250, duration_ms=int((time.perf_counter() - started) * 1000)
        )

    return send
