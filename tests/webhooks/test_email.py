"""Email notices against a real SMTP server (aiosmtpd) on 127.0.0.1: delivery, AUTH, refusals,
transient failures, STARTTLS and implicit TLS, and the thinness of what is sent."""

import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app.webhooks.email import (
    EmailFailed,
    SmtpSettings,
    is_valid_address,
    render_notice,
    send_notice,
)
from tests.processes import free_port

SENDER = "haven@school.example"
TO = "dsl@school.example"
USERNAME = "haven-relay"
PASSWORD = "pw-Zq7-never-in-messages"
WEBHOOK_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"

MARKERS = [
    "MARKER-CHILD-NAME-7f3a",
    "MARKER-DESCRIPTION-91bc",
    "MARKER-EVIDENCE-5d2e",
    "MARKER-STAFF-NAME-c4d8",
]

ESCALATED = {
    "type": "incident.escalated",
    "timestamp": "2026-03-02T09:15:00+00:00",
    "data": {
        "incident_id": 42,
        "reference": "INC-2026-0042",
        "severity": "critical",
        "rules": ["sexual-image-of-child", "adult-involved"],
        "required_actions": ["Contact the police.", "Inform the LADO."],
        "url": "https://haven.school.example/incidents/42",
    },
}


def escalated_with_markers() -> dict:
    """A thin event plus fields that must never reach an email, whoever adds them."""
    event = {**ESCALATED, "data": {**ESCALATED["data"]}}
    event["data"]["child_name"] = MARKERS[0]
    event["data"]["description"] = MARKERS[1]
    event["data"]["evidence"] = [{"filename": MARKERS[2]}]
    event["reported_by"] = MARKERS[3]
    return event


# --- a real SMTP server -------------------------------------------------------------------


class Collector:
    """An aiosmtpd handler that keeps what it accepts, or answers RCPT/MAIL/DATA as told."""

    def __init__(self, *, mail: str = "", rcpt: str = "", data: str = ""):
        self.replies = {"MAIL": mail, "RCPT": rcpt, "DATA": data}
        self.received: list[dict] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.replies["MAIL"]:
            return self.replies["MAIL"]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.replies["RCPT"]:
            return self.replies["RCPT"]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.replies["DATA"]:
            return self.replies["DATA"]
        self.received.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "raw": envelope.original_content or envelope.content,
                "authenticated": bool(session.authenticated),
                # STARTTLS sets session.ssl; implicit TLS shows on the transport.
                "tls": session.ssl is not None
                or server.transport.get_extra_info("ssl_object") is not None,
            }
        )
        return "250 2.0.0 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., int]]:
    """Start aiosmtpd on 127.0.0.1 with the given handler and SMTP options; returns its port."""
    controllers: list[Controller] = []

    def start(handler: Collector, **options) -> int:
        last_error: Exception | None = None
        for _ in range(5):  # a free port can be taken between the probe and the bind
            controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
            try:
                controller.start()
            except OSError as exc:
                last_error = exc
                continue
            controllers.append(controller)
            return controller.port
        raise RuntimeError(f"could not start aiosmtpd: {last_error}")

    yield start
    for controller in controllers:
        controller.stop()


def accept_login(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok)


def echo_password_on_failure(server, session, envelope, mechanism, auth_data):
    """A careless server that quotes the password in its refusal."""
    password = auth_data.password.decode() if isinstance(auth_data, LoginPassword) else ""
    return AuthResult(success=False, handled=False, message=f"535 5.7.8 bad credentials {password}")


def plain(port: int, **overrides) -> SmtpSettings:
    values = {
        "host": "127.0.0.1",
        "port": port,
        "starttls": False,
        "sender": f"Haven at Test School <{SENDER}>",
        "timeout": 5.0,
        **overrides,
    }
    return SmtpSettings(**values)


def send(settings: SmtpSettings, event: dict | None = None, *, to: str = TO) -> None:
    subject, body = render_notice(event or ESCALATED, school_name="Test School")
    send_notice(settings, to=to, subject=subject, body=body, message_id=WEBHOOK_ID)


def failure(settings: SmtpSettings, **kwargs) -> EmailFailed:
    with pytest.raises(EmailFailed) as caught:
        send(settings, **kwargs)
    return caught.value


# --- delivery -----------------------------------------------------------------------------


def test_a_notice_arrives_with_its_headers_and_only_thin_content(smtp_server):
    handler = Collector()
    port = smtp_server(handler)

    send(plain(port), escalated_with_markers())

    [got] = handler.received
    assert got["mail_from"] == SENDER
    assert got["rcpt_tos"] == [TO]
    message = message_from_bytes(got["raw"], policy=policy.default)
    assert message["From"] == f"Haven at Test School <{SENDER}>"
    assert message["To"] == TO
    assert message["Subject"] == "[Haven] Escalated: INC-2026-0042 (critical)"
    assert message["X-Haven-Webhook-Id"] == WEBHOOK_ID
    assert message["Message-ID"] == f"<{WEBHOOK_ID}@school.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    sent_at = message["Date"].datetime
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)
    body = message.get_content()
    assert "INC-2026-0042" in body
    assert "https://haven.school.example/incidents/42" in body
    raw = got["raw"].decode("utf-8", "replace")
    for marker in MARKERS:
        assert marker not in raw


def test_the_same_webhook_id_gives_the_same_message_id_on_a_retry(smtp_server):
    handler = Collector()
    port = smtp_server(handler)

    send(plain(port))
    send(plain(port))

    ids = {
        message_from_bytes(r["raw"], policy=policy.default)["Message-ID"] for r in handler.received
    }
    assert ids == {f"<{WEBHOOK_ID}@school.example>"}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_login_works_against_a_server_that_requires_auth(smtp_server):
    handler = Collector()
    port = smtp_server(
        handler, authenticator=accept_login, auth_required=True, auth_require_tls=False
    )

    send(plain(port, username=USERNAME, password=PASSWORD))

    [got] = handler.received
    assert got["authenticated"] is True


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_a_server_that_requires_auth_refuses_an_anonymous_sender(smtp_server):
    handler = Collector()
    port = smtp_server(
        handler, authenticator=accept_login, auth_required=True, auth_require_tls=False
    )

    failed = failure(plain(port))

    assert failed.permanent is True  # 530 authentication required
    assert failed.code == 530
    assert handler.received == []


def test_a_wrong_password_is_permanent_and_never_quoted(smtp_server):
    handler = Collector()
    port = smtp_server(handler, authenticator=echo_password_on_failure, auth_require_tls=False)
    settings = plain(port, username=USERNAME, password=PASSWORD)

    failed = failure(settings)

    assert failed.permanent is True
    assert failed.code == 535
    assert "AUTH" in failed.detail
    assert "***" in failed.detail  # the server did quote it; Haven blanked it out
    for text in (str(failed), repr(failed), failed.detail, repr(settings), str(settings)):
        assert PASSWORD not in text
    assert failed.__cause__ is None
    assert failed.__context__ is None  # no smtplib error quoting the server rides along


@pytest.mark.parametrize(
    ("replies", "permanent", "code"),
    [
        ({"rcpt": "550 5.1.1 <dsl@school.example>: mailbox unavailable"}, True, 550),
        ({"rcpt": "553 5.1.3 address rejected"}, True, 553),
        ({"rcpt": "451 4.3.0 greylisted, try again later"}, False, 451),
        ({"rcpt": "452 4.2.2 mailbox full"}, False, 452),
        ({"mail": "550 5.7.1 sender not allowed"}, True, 550),
        ({"mail": "421 4.7.0 too many connections"}, False, 421),
        ({"data": "554 5.7.1 message rejected as spam"}, True, 554),
        ({"data": "451 4.3.0 local error in processing"}, False, 451),
    ],
    ids=[
        "rcpt-550",
        "rcpt-553",
        "rcpt-451",
        "rcpt-452",
        "mail-550",
        "mail-421",
        "data-554",
        "data-451",
    ],
)
def test_refusals_are_permanent_for_5xx_and_not_for_4xx(smtp_server, replies, permanent, code):
    handler = Collector(**replies)
    port = smtp_server(handler)

    failed = failure(plain(port))

    assert failed.permanent is permanent
    assert failed.code == code
    assert str(code) in failed.detail
    assert handler.received == []


def test_a_closed_port_is_not_permanent():
    failed = failure(plain(free_port()))

    assert failed.permanent is False
    assert failed.code is None
    assert "connect" in failed.detail


def test_a_server_that_never_greets_times_out_and_is_not_permanent():
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel completes the handshake; nobody ever says 220
        port = silent.getsockname()[1]

        failed = failure(plain(port, timeout=0.5))

    assert failed.permanent is False
    assert "timed out" in failed.detail.lower() or "Timeout" in failed.detail


def test_starttls_required_but_not_offered_does_not_send_in_clear(smtp_server):
    handler = Collector()
    port = smtp_server(handler)

    failed = failure(plain(port, starttls=True, username=USERNAME, password=PASSWORD))

    assert failed.permanent is False
    assert "STARTTLS" in failed.detail
    assert handler.received == []
    assert PASSWORD not in str(failed)


@pytest.mark.parametrize(
    "to", ["not an address", "dsl@school.example\r\nBcc: x@evil.example", "a@b@c", ""]
)
def test_a_bad_recipient_is_permanent_and_nothing_is_sent(to):
    # A closed port: had it tried to connect, the failure would not be permanent.
    failed = failure(plain(free_port()), to=to)

    assert failed.permanent is True
    assert "recipient" in failed.detail


def test_a_missing_or_bad_sender_is_permanent():
    assert failure(plain(free_port(), sender="")).permanent is True
    assert failure(plain(free_port(), sender="haven at school")).permanent is True


def test_no_host_is_not_permanent():
    failed = failure(SmtpSettings(host="", sender=SENDER))

    assert failed.permanent is False
    assert "HAVEN_SMTP_HOST" in failed.detail


def test_address_check_for_saving_an_endpoint():
    assert is_valid_address("dsl@school.example")
    assert is_valid_address("safeguarding+haven@mail.school.sch.uk")
    assert not is_valid_address("DSL <dsl@school.example>")
    assert not is_valid_address("dsl@school.example, head@school.example")


# --- rendering ----------------------------------------------------------------------------


def test_render_escalated_lists_only_the_thin_fields():
    subject, body = render_notice(escalated_with_markers(), school_name="Test School")

    assert subject == "[Haven] Escalated: INC-2026-0042 (critical)"
    assert "Test School" in body
    assert "Reference: INC-2026-0042" in body
    assert "Severity: critical" in body
    assert "Rules: sexual-image-of-child, adult-involved" in body
    assert "- Contact the police.\n- Inform the LADO." in body
    assert "Open in Haven: https://haven.school.example/incidents/42" in body
    for marker in MARKERS:
        assert marker not in subject + body


@pytest.mark.parametrize(
    ("event_type", "subject"),
    [
        ("incident.updated", "[Haven] Incident updated: INC-2026-0042"),
        ("checklist.overdue", "[Haven] Checklist overdue: INC-2026-0042"),
        ("policy.review_due", "[Haven] Policy review due: INC-2026-0042"),
        ("webhook.test", "[Haven] Test notice: INC-2026-0042"),
        ("something.new", "[Haven] Notice: INC-2026-0042"),
    ],
)
def test_render_other_events_generically(event_type, subject):
    event = {
        "type": event_type,
        "timestamp": "2026-03-02T09:15:00+00:00",
        "data": {
            "reference": "INC-2026-0042",
            "url": "https://haven.school.example/x/1",
            "title": MARKERS[1],
        },
    }

    got_subject, body = render_notice(event, school_name="Test School")

    assert got_subject == subject
    assert f"Event: {event_type}" in body
    assert "Reference: INC-2026-0042" in body
    assert "Open in Haven: https://haven.school.example/x/1" in body
    assert MARKERS[1] not in got_subject + body


@pytest.mark.parametrize(
    ("event_type", "subject"),
    [
        ("checklist.overdue", "[Haven] Checklist overdue"),
        ("policy.review_due", "[Haven] Policy review due"),
        ("webhook.test", "[Haven] Test notice"),
    ],
)
def test_render_without_reference_or_url(event_type, subject):
    got_subject, body = render_notice({"type": event_type, "data": {}}, school_name="S")

    assert got_subject == subject
    assert "Reference:" not in body
    assert "Open in Haven" not in body


def test_render_keeps_the_subject_on_one_line():
    event = {
        "type": "incident.escalated",
        "data": {"reference": "INC-1\r\nBcc: x@evil.example", "severity": "high\n"},
    }

    subject, _ = render_notice(event, school_name="Test School")

    assert "\n" not in subject and "\r" not in subject
    assert subject == "[Haven] Escalated: INC-1 Bcc: x@evil.example (high)"


# --- TLS (needs the cryptography package to make a self-signed certificate) ----------------


@pytest.fixture
def certificate(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, trusted by the client through SSL_CERT_FILE."""
    pytest.importorskip("cryptography")
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "haven-test-smtp")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def test_starttls_then_login(smtp_server, certificate, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    handler = Collector()
    port = smtp_server(
        handler,
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=accept_login,
        auth_required=True,
    )

    send(plain(port, starttls=True, username=USERNAME, password=PASSWORD))

    [got] = handler.received
    assert got["tls"] is True
    assert got["authenticated"] is True


def test_implicit_tls(smtp_server, certificate, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    handler = Collector()
    port = smtp_server(handler, ssl_context=server_context(certificate))

    send(plain(port, use_tls=True))

    [got] = handler.received
    assert got["tls"] is True


def test_an_untrusted_certificate_is_refused_and_not_permanent(
    smtp_server, certificate, monkeypatch, tmp_path
):
    empty = tmp_path / "no-cas.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-dir"))
    handler = Collector()
    port = smtp_server(handler, tls_context=server_context(certificate))

    failed = failure(plain(port, starttls=True, username=USERNAME, password=PASSWORD))

    assert failed.permanent is False
    assert "STARTTLS" in failed.detail
    assert handler.received == []
    assert PASSWORD not in str(failed)
