"""Haven's thin notices, sent to a mailbox by SMTP.

Many DSL inboxes are plain mailboxes, so an endpoint may be an email address. The email
carries the same thin content as a webhook (reference, severity, rule keys, required actions
and a link back), never names, descriptions or evidence.

`send_notice` raises `EmailFailed`; `.permanent` says whether retrying the same message can
help. Permanent: the server answered 5xx (a refused recipient, sender, login or message) or an
address or the message id is malformed. Not permanent: refused or dropped connections,
timeouts, TLS failures, a server that does not offer STARTTLS or AUTH, 4xx answers, and no
host configured. The password never appears in `EmailFailed`, in `repr(SmtpSettings)` or in
a log line.
"""

import re
import smtplib
import ssl
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr

DETAIL_MAX = 200
SUBJECT_MAX = 200
_MESSAGE_ID = re.compile(r"[A-Za-z0-9._~+=-]{1,128}")
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*")
_SPACE = re.compile(r"\s+")

_TITLES = {
    "incident.updated": "Incident updated",
    "checklist.overdue": "Checklist overdue",
    "policy.review_due": "Policy review due",
    "webhook.test": "Test notice",
}
_FOOTER = (
    "This notice carries no names or details by design: children's data stays in Haven,\n"
    "where access is audited. Sign in to Haven to see the record."
)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    use_tls: bool = False
    sender: str = ""
    timeout: float = 10.0


class EmailFailed(Exception):
    """An email that was not accepted. `detail` is short and free of secrets; `code` is the
    SMTP reply code when the server gave one."""

    def __init__(self, detail: str, *, permanent: bool, code: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent
        self.code = code


def _one_line(value: object) -> str:
    return _SPACE.sub(" ", "" if value is None else str(value)).strip()


def _items(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [text for text in (_one_line(item) for item in value) if text]
    text = _one_line(value)
    return [text] if text else []


def render_notice(event: dict, *, school_name: str) -> tuple[str, str]:
    """(subject, plain-text body) from a thin Standard Webhooks body. Only the thin fields are
    read; anything else in the event is ignored."""
    kind = _one_line(event.get("type")) or "notice"
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    reference = _one_line(data.get("reference"))
    url = _one_line(data.get("url"))
    school = _one_line(school_name) or "your school"

    if kind == "incident.escalated":
        severity = _one_line(data.get("severity")) or "unknown"
        subject = f"[Haven] Escalated: {reference or 'incident'} ({severity})"
        rules = _items(data.get("rules"))
        actions = _items(data.get("required_actions"))
        lines = [
            f"An incident at {school} has been escalated.",
            "",
            f"Reference: {reference or '(none)'}",
            f"Severity: {severity}",
            f"Rules: {', '.join(rules) if rules else '(none)'}",
            "Required actions:",
            *([f"- {action}" for action in actions] or ["- (none)"]),
        ]
    else:
        title = _TITLES.get(kind, "Notice")
        subject = f"[Haven] {title}" + (f": {reference}" if reference else "")
        lines = [f"{title} at {school}.", "", f"Event: {kind}"]
        if reference:
            lines.append(f"Reference: {reference}")
        if kind == "webhook.test":
            lines += ["", "This is a test: email notices from Haven reach this mailbox."]
    if url:
        lines += ["", f"Open in Haven: {url}"]
    lines += ["", "--", _FOOTER]
    return subject[:SUBJECT_MAX], "\n".join(lines) + "\n"


def _bare_address(value: str) -> str | None:
    """A plain ASCII addr-spec (local@domain), or None."""
    if not value or len(value) > 254 or value.count("@") != 1:
        return None
    local, domain = value.split("@")
    if not _LOCAL_PART.fullmatch(local) or local.startswith(".") or local.endswith("."):
        return None
    if ".." in local or not _DOMAIN.fullmatch(domain):
        return None
    return value


def is_valid_address(address: str) -> bool:
    """True for the plain ASCII addresses `send_notice` accepts as `to` (check at save time)."""
    return _bare_address(address) is not None


def _sender(value: str) -> tuple[str, str]:
    """(From header, envelope address) from "haven@school.example" or "Haven <haven@...>"."""
    if "\r" in value or "\n" in value:
        raise EmailFailed("the sender address (HAVEN_SMTP_FROM) is not valid", permanent=True)
    name, address = parseaddr(value)
    if not value.strip():
        raise EmailFailed("no sender address is configured (HAVEN_SMTP_FROM)", permanent=True)
    if _bare_address(address) is None:
        raise EmailFailed("the sender address (HAVEN_SMTP_FROM) is not valid", permanent=True)
    return formataddr((_one_line(name), address)), address


def build_message(
    settings: SmtpSettings, *, to: str, subject: str, body: str, message_id: str
) -> EmailMessage:
    """The message `send_notice` sends; raises EmailFailed(permanent=True) for bad input."""
    if _bare_address(to) is None:
        raise EmailFailed("the recipient address is not valid", permanent=True)
    if not _MESSAGE_ID.fullmatch(message_id):
        raise EmailFailed("the message id is not valid", permanent=True)
    from_header, from_address = _sender(settings.sender)
    message = EmailMessage()
    message["From"] = from_header
    message["To"] = to
    message["Subject"] = _one_line(subject)[:SUBJECT_MAX]
    message["Date"] = format_datetime(datetime.now(UTC))
    # Stable across retries, so a mailbox that dedupes by Message-ID shows one notice.
    message["Message-ID"] = f"<{message_id}@{from_address.rsplit('@', 1)[1]}>"
    message["X-Haven-Webhook-Id"] = message_id
    # RFC 3834, and Exchange's own header: no out-of-office replies to a notification.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(body)
    return message


def _reply_text(reply: object, secrets: tuple[str, ...]) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    text = _one_line(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _refused(stage: str, code: int, reply: object, secrets: tuple[str, ...]) -> EmailFailed:
    detail = f"SMTP {code} at {stage}: {_reply_text(reply, secrets)}".strip(": ")
    return EmailFailed(detail[:DETAIL_MAX], permanent=500 <= code < 600, code=code)


def send_notice(
    settings: SmtpSettings, *, to: str, subject: str, body: str, message_id: str
) -> None:
    """Send one notice; returns when the server accepted it, else raises EmailFailed."""
    if not settings.host:
        raise EmailFailed("no SMTP host is configured (HAVEN_SMTP_HOST)", permanent=False)
    message = build_message(settings, to=to, subject=subject, body=body, message_id=message_id)
    envelope_from = parseaddr(settings.sender)[1]
    secrets = (settings.password,) if settings.password else ()
    context = ssl.create_default_context()  # verifies the certificate and the host name
    client: smtplib.SMTP | None = None
    failed: EmailFailed | None = None
    stage = "connect"
    try:
        if settings.use_tls:
            client = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        stage = "EHLO"
        client.ehlo()
        if settings.starttls and not settings.use_tls:
            stage = "STARTTLS"
            client.starttls(context=context)  # raises, rather than go on in clear, if not offered
            client.ehlo()
        if settings.username:
            stage = "AUTH"
            client.login(settings.username, settings.password)
        stage = "MAIL"
        client.send_message(message, from_addr=envelope_from, to_addrs=[to])
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()), (0, b""))
        failed = _refused("RCPT", code, reply, secrets)
    except smtplib.SMTPSenderRefused as exc:
        failed = _refused("MAIL", exc.smtp_code, exc.smtp_error, secrets)
    except smtplib.SMTPDataError as exc:
        failed = _refused("DATA", exc.smtp_code, exc.smtp_error, secrets)
    except smtplib.SMTPResponseException as exc:  # greeting, EHLO, STARTTLS, AUTH
        failed = _refused(stage, exc.smtp_code, exc.smtp_error, secrets)
    except UnicodeError:
        # smtplib sends credentials as ASCII; its error would quote them, so say no more.
        failed = EmailFailed(
            f"SMTP {stage} failed: the username or password is not ASCII", permanent=True
        )
    except (smtplib.SMTPException, OSError) as exc:  # dropped, refused, timed out, TLS, no ext.
        reason = _reply_text(exc, secrets) or "no reason given"
        detail = f"SMTP {stage} failed: {type(exc).__name__}: {reason}"
        failed = EmailFailed(detail[:DETAIL_MAX], permanent=False)
    finally:
        if client is not None:
            if failed is None or failed.code is not None:  # the server is still talking
                with suppress(smtplib.SMTPException, OSError):
                    client.quit()  # a polite goodbye only; the outcome is already known
            client.close()
    if failed is not None:
        # Raised here, outside the handler, so no smtplib exception (which may quote the
        # server, or the credentials) rides along as __context__ into tracebacks or logs.
        raise failed
