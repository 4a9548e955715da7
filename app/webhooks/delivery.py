"""Sending outbox messages: claim, sign, POST (or email), record. At least once, never lost."""

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from app.core.config import parse_allow_cidrs
from app.core.errors import database_error_reason, is_database_busy, is_database_unavailable
from app.core.http import safe_client
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


# Endpoints delivered to at once: one that hangs until its timeout holds up no other.
DELIVERY_THREADS = 4


class Deliveries:
    """Sends what is due on a few threads: different endpoints at once, one endpoint's messages
    one at a time and in order. A message whose sending is cut short (the worker stops, the
    database goes away) keeps its lease until it runs out, and is then sent again."""

    def __init__(
        self,
        *,
        engine: Engine,
        client: httpx.Client,
        send_email: Callable[[service.Outgoing], service.Outcome] | None = None,
        now: Callable[[], datetime] = utcnow,
        threads: int = DELIVERY_THREADS,
        base_url: str = "",
    ):
        self.engine, self.client, self.send_email, self.now = engine, client, send_email, now
        self.base_url = base_url  # HAVEN_BASE_URL, before each message's path
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="haven-delivery")
        self._mutex = threading.Lock()
        self._busy: set[int] = set()  # endpoints being delivered to
        self._running: list[Future] = []
        self._stopping = threading.Event()

    def start_due(self, limit: int = 20) -> int:
        """Claim what is due for the endpoints not being delivered to, and start sending it
        without waiting; returns how many messages were claimed."""
        with self._mutex:
            busy = set(self._busy)
        with Session(self.engine, expire_on_commit=False) as session:
            claimed = service.claim_due(
                session=session, now=self.now(), limit=limit, skip_endpoints=busy
            )
        with self._mutex:
            self._busy |= claimed.keys()
            self._running = [f for f in self._running if not f.done()]
            for endpoint_id, ids in claimed.items():
                self._running.append(self._pool.submit(self._send_in_order, endpoint_id, ids))
        return sum(len(ids) for ids in claimed.values())

    def wait(self) -> None:
        """Until everything started has been sent and recorded."""
        with self._mutex:
            running, self._running = self._running, []
        for future in running:
            future.result()

    def close(self) -> None:
        """Finish the messages being sent now; leave the others for their lease to run out."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _send_in_order(self, endpoint_id: int, ids: list[int]) -> None:
        try:
            for message_id in ids:
                if self._stopping.is_set():
                    break
                self._send(message_id)
        except Exception as exc:
            if is_database_unavailable(exc) or is_database_busy(exc):
                log.warning("webhooks: delivery stopped (%s)", database_error_reason(exc))
            else:
                log.exception("webhooks: delivery to endpoint %s failed", endpoint_id)
        finally:
            with self._mutex:
                self._busy.discard(endpoint_id)

    def _send(self, message_id: int) -> None:
        at = self.now()
        with Session(self.engine, expire_on_commit=False) as session:
            outgoing = service.prepare(
                session=session, message_id=message_id, now=at, base_url=self.base_url
            )
        if outgoing is None:
            return
        if outgoing.endpoint_format == EndpointFormat.email:
            outcome = (
                self.send_email(outgoing)
                if self.send_email
                else service.Outcome(error="email is not configured (HAVEN_SMTP_HOST)")
            )
        else:
            outcome = post(self.client, outgoing, at)
        with Session(self.engine, expire_on_commit=False) as session:
            service.record_outcome(
                session=session, message_id=message_id, outcome=outcome, now=self.now()
            )
        log.info(
            "webhook %s: %s",
            outgoing.webhook_id,
            "delivered" if outcome.delivered else outcome.error,
        )


def deliver_due(
    *,
    engine: Engine,
    client: httpx.Client,
    send_email: Callable[[service.Outgoing], service.Outcome] | None = None,
    now: Callable[[], datetime] = utcnow,
    limit: int = 20,
    base_url: str = "",
) -> int:
    """Deliver what is due now, and wait until it is done; returns how many were tried."""
    deliveries = Deliveries(
        engine=engine, client=client, send_email=send_email, now=now, base_url=base_url
    )
    try:
        tried = deliveries.start_due(limit)
        deliveries.wait()
    finally:
        deliveries.close()
    return tried


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
