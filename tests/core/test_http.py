"""The SSRF guard for outbound HTTP: addresses refused when saved, and again when connecting (to
the address that was checked, so DNS rebinding fails), redirects never followed. No internet:
names resolve through fake resolvers, and the receiver is a real local server on 127.0.0.1."""

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from app.core import http as outbound
from app.core.config import parse_allow_cidrs
from app.core.errors import InvalidInput
from app.core.http import UnsafeDestination, check_url, safe_client

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
ALLOW_HINT = "HAVEN_WEBHOOK_ALLOW_CIDRS"


class FakeDNS:
    """Stands in for socket.getaddrinfo: each name answers with the next list in its script
    (the last one repeats); unknown names fail as a real lookup would."""

    def __init__(self, answers: dict[str, list[str] | list[list[str]]]):
        self.scripts = {
            name: value if value and isinstance(value[0], list) else [value]
            for name, value in answers.items()
        }
        self.calls: list[str] = []

    def __call__(self, host, port, *args, **kwargs):
        self.calls.append(host)
        script = self.scripts.get(host)
        if script is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = script[0] if len(script) == 1 else script.pop(0)
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port),
            )
            for address in addresses
        ]


class Receiver(ThreadingHTTPServer):
    """A local HTTP(S) server that records every connection and request it gets."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.connections = 0
        self.requests: list[dict] = []
        self.server_names: list[str | None] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(
            {"method": self.command, "path": self.path, "host": self.headers["Host"], "body": body}
        )
        if self.path.startswith("/redirect"):
            target = self.path.partition("?to=")[2] or "http://10.0.0.5/internal"
            self.send_response(308)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _answer

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


# --- the allow-list -------------------------------------------------------------------------


def test_parse_allow_cidrs_reads_ranges():
    assert parse_allow_cidrs("") == []
    assert parse_allow_cidrs("   ") == []
    assert parse_allow_cidrs("10.0.0.0/8") == [ipaddress.ip_network("10.0.0.0/8")]
    assert parse_allow_cidrs("10.0.0.0/8, fd00::/8") == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    ]
    assert parse_allow_cidrs(" 192.168.1.0/24,,172.16.5.10 ") == [
        ipaddress.ip_network("192.168.1.0/24"),
        ipaddress.ip_network("172.16.5.10/32"),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("banana", '"banana" is not an IP address range'),
        ("10.0.0.0/8, banana", '"banana" is not an IP address range'),
        ("10.0.0.0/33", '"10.0.0.0/33" is not an IP address range'),
        ("10.1.2.3/8", "did you mean 10.0.0.0/8"),
    ],
)
def test_parse_allow_cidrs_refuses_junk(value, message):
    with pytest.raises(ValueError, match=message):
        parse_allow_cidrs(value)


# --- save time ------------------------------------------------------------------------------

DNS = {
    "hooks.example.org": [PUBLIC_V4],
    "dual.example.org": [PUBLIC_V4, PUBLIC_V6],
    "mixed.example": [PUBLIC_V4, "10.0.0.5"],
    "metadata.example": ["169.254.169.254"],
    "lan-relay.school.example": ["10.20.0.7"],
}

REFUSED = [
    ("http://example.com", [], "must start with https://"),
    ("https://user:pw@example.com", [], "user name or password"),
    ("https://127.0.0.1/", [], "127.0.0.1 is a loopback address"),
    ("https://[::1]/", [], "::1 is the IPv6 loopback address"),
    (
        "https://[::ffff:127.0.0.1]/",
        [],
        "::ffff:127.0.0.1 is an IPv4-mapped IPv6 form of 127.0.0.1, a loopback address",
    ),
    ("https://169.254.169.254/latest", [], "169.254.169.254 is the cloud metadata service"),
    ("https://100.64.0.1/", [], "100.64.0.1 is a carrier-grade NAT address"),
    ("https://10.1.2.3/", [], "10.1.2.3 is a private network address"),
    ("https://192.168.0.10/", [], "192.168.0.10 is a private network address"),
    ("https://172.16.4.4/", [], "172.16.4.4 is a private network address"),
    ("https://[fc00::1]/", [], "fc00::1 is an IPv6 unique local address"),
    ("https://[fd12:3456::1]/", [], "is an IPv6 unique local address"),
    ("https://[fe80::1]/", [], "fe80::1 is an IPv6 link-local address"),
    ("https://169.254.10.1/", [], "169.254.10.1 is a link-local address"),
    ("https://224.0.0.1/", [], "224.0.0.1 is a multicast address"),
    ("https://[ff02::1]/", [], "is an IPv6 multicast address"),
    ("https://0.0.0.0/", [], "0.0.0.0 is the unspecified address"),
    ("https://0.1.2.3/", [], "is a 'this network' address"),
    ("https://[::]/", [], "is the unspecified IPv6 address"),
    ("https://255.255.255.255/", [], "is the broadcast address"),
    ("https://240.0.0.1/", [], "is a reserved address"),
    ("https://192.0.2.10/", [], "is a documentation address"),
    ("https://[2001:db8::1]/", [], "is a documentation address"),
    ("https://198.18.0.1/", [], "is a benchmarking address"),
    ("https://[::7f00:1]/", [], "is a reserved IPv6 address"),
    ("https://[64:ff9b::a9fe:a9fe]/", [], "a NAT64 IPv6 form of 169.254.169.254"),
    ("https://[2002:7f00:1::]/", [], "a 6to4 IPv6 form of 127.0.0.1, a loopback address"),
    ("https://[::ffff:10.0.0.1]/", [], "IPv4-mapped IPv6 form of 10.0.0.1, a private network"),
    # Old numeric spellings that getaddrinfo reads as 127.0.0.1 without asking DNS.
    ("https://127.1/", [], "stands for 127.0.0.1, a loopback address"),
    ("https://0x7f.1/", [], "stands for 127.0.0.1, a loopback address"),
    ("https://2130706433/", [], "stands for 127.0.0.1, a loopback address"),
    (
        "https://mixed.example/",
        [],
        "mixed.example resolves to 10.0.0.5, a private network address",
    ),
    ("https://metadata.example/", [], "resolves to 169.254.169.254, the cloud metadata service"),
    ("ftp://example.com", [], "must start with https:// (ftp:// was given)"),
    ("https://", [], "has no host name"),
    ("https:///hook", [], "has no host name"),
    ("hooks.example.org/hook", [], "no scheme was given"),
    ("https://hooks.example.org:0/", [], "port 0 is not valid"),
    ("https://hooks.example.org:70000/", [], "port 70000 is not valid"),
    ("https://[zz::1]/", [], "not a valid URL"),
    ("https://999.1.1.1/", [], "not a valid URL"),
    ("https://nowhere.invalid/", [], "could not look up the address nowhere.invalid"),
    # http only inside allow-listed ranges, for every address of the name.
    ("http://hooks.example.org/", LOOPBACK, "outside the allow-listed ranges"),
    ("http://mixed.example/", [ipaddress.ip_network("10.0.0.0/8")], "resolves to 93.184.216.34"),
    # Allow-listing one range lets nothing else through.
    ("https://10.1.2.3/", [ipaddress.ip_network("192.168.0.0/16")], "private network address"),
]


@pytest.mark.parametrize(("url", "allow", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_check_url_refuses(url, allow, message):
    with pytest.raises(UnsafeDestination) as caught:
        check_url(url, allow=allow, resolve=FakeDNS(DNS))
    assert message in caught.value.detail
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.status_code == 422


def test_refusal_of_an_address_tells_the_administrator_about_the_allow_list():
    with pytest.raises(UnsafeDestination) as caught:
        check_url("https://lan-relay.school.example/hook", allow=[], resolve=FakeDNS(DNS))
    assert caught.value.detail == (
        "The address lan-relay.school.example resolves to 10.20.0.7, a private network address. "
        "Haven only sends to public addresses unless an administrator allow-lists the range "
        f"({ALLOW_HINT})."
    )


def test_literal_addresses_are_not_looked_up():
    dns = FakeDNS({})
    for url in ("https://127.0.0.1/", "https://[::ffff:127.0.0.1]/", "https://0x7f.1/"):
        with pytest.raises(UnsafeDestination):
            check_url(url, allow=[], resolve=dns)
    assert dns.calls == []


@pytest.mark.parametrize(
    ("url", "allow", "addresses"),
    [
        ("https://hooks.example.org/hook", [], [PUBLIC_V4]),
        ("https://dual.example.org/", [], [PUBLIC_V4, PUBLIC_V6]),
        ("https://93.184.216.34:8443/x", [], [PUBLIC_V4]),
        ("https://[64:ff9b::5db8:d822]/", [], ["64:ff9b::5db8:d822"]),  # NAT64 of a public one
        ("http://127.0.0.1:8080/hook", LOOPBACK, ["127.0.0.1"]),
        ("http://[::ffff:127.0.0.1]:8080/", LOOPBACK, ["::ffff:7f00:1"]),
        (
            "http://lan-relay.school.example/",
            parse_allow_cidrs("10.0.0.0/8"),
            ["10.20.0.7"],
        ),
        ("https://10.1.2.3/", parse_allow_cidrs("10.0.0.0/8, fd00::/8"), ["10.1.2.3"]),
        ("https://[fd00::5]/", parse_allow_cidrs("10.0.0.0/8, fd00::/8"), ["fd00::5"]),
    ],
)
def test_check_url_accepts(url, allow, addresses):
    assert check_url(url, allow=allow, resolve=FakeDNS(DNS)) == addresses


def test_check_url_accepts_the_allow_listed_local_receiver(receiver):
    url = f"http://127.0.0.1:{receiver.port}/hook"
    assert check_url(url, allow=LOOPBACK) == ["127.0.0.1"]
    assert receiver.connections == 0  # checking never connects


# --- connect time ---------------------------------------------------------------------------


def test_a_request_to_the_allow_listed_receiver_works_with_the_right_host(receiver):
    dns = FakeDNS({"receiver.test": ["127.0.0.1"]})
    with safe_client(allow=LOOPBACK, resolve=dns) as client:
        response = client.post(f"http://receiver.test:{receiver.port}/hook", content=b"{}")
    assert response.status_code == 200
    assert response.text == "ok"
    assert receiver.requests == [
        {"method": "POST", "path": "/hook", "host": f"receiver.test:{receiver.port}", "body": b"{}"}
    ]
    assert dns.calls == ["receiver.test"]


def test_the_name_is_looked_up_once_and_the_checked_address_is_used(receiver, monkeypatch):
    """The guard resolves the name; the socket is opened to the IP it checked, so the
    system resolver is never asked about the name a second time."""
    asked: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def watching_getaddrinfo(host, *args, **kwargs):
        asked.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", watching_getaddrinfo)
    dns = FakeDNS({"receiver.test": ["127.0.0.1"]})
    with safe_client(allow=LOOPBACK, resolve=dns) as client:
        assert client.get(f"http://receiver.test:{receiver.port}/").status_code == 200
    assert dns.calls == ["receiver.test"]
    assert "receiver.test" not in asked


def test_dns_rebinding_is_refused_at_connect_time(receiver):
    """Public when the address is saved, loopback when Haven connects: refused, and the
    local server never sees even a connection."""
    dns = FakeDNS({"rebind.example": [[PUBLIC_V4], ["127.0.0.1"]]})
    url = f"https://rebind.example:{receiver.port}/hook"
    assert check_url(url, allow=[], resolve=dns) == [PUBLIC_V4]

    with safe_client(allow=[], resolve=dns) as client, pytest.raises(UnsafeDestination) as caught:
        client.post(url, content=b"{}")
    assert "rebind.example resolves to 127.0.0.1, a loopback address" in caught.value.detail
    assert dns.calls == ["rebind.example", "rebind.example"]
    assert receiver.connections == 0
    assert receiver.requests == []


def test_rebinding_to_one_private_answer_among_public_ones_is_refused(receiver):
    dns = FakeDNS({"rebind.example": [[PUBLIC_V4], [PUBLIC_V4, "127.0.0.1"]]})
    url = f"https://rebind.example:{receiver.port}/hook"
    check_url(url, allow=[], resolve=dns)
    with safe_client(allow=[], resolve=dns) as client, pytest.raises(UnsafeDestination):
        client.get(url)
    assert receiver.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:{port}/",
        "http://127.0.0.1:{port}/",
        "https://[::ffff:127.0.0.1]:{port}/",
        "https://0x7f.1:{port}/",
        "https://localhost.test:{port}/",
    ],
)
def test_internal_addresses_are_refused_at_connect_time(receiver, url):
    dns = FakeDNS({"localhost.test": ["127.0.0.1"]})
    with safe_client(allow=[], resolve=dns) as client, pytest.raises(UnsafeDestination):
        client.get(url.format(port=receiver.port))
    assert receiver.connections == 0


def test_plain_http_to_an_address_outside_the_allow_list_is_refused_at_connect_time():
    dns = FakeDNS({"hooks.example.org": [PUBLIC_V4]})
    with safe_client(allow=LOOPBACK, resolve=dns) as client, pytest.raises(UnsafeDestination) as c:
        client.get("http://hooks.example.org/")
    assert "only over https://" in c.value.detail


def test_other_schemes_and_userinfo_are_refused_by_the_client():
    with safe_client(allow=LOOPBACK, resolve=FakeDNS({})) as client:
        with pytest.raises(UnsafeDestination, match="user name or password"):
            client.get("https://user:pw@127.0.0.1:1/")
        with pytest.raises((UnsafeDestination, httpx.UnsupportedProtocol)):
            client.get("ftp://127.0.0.1/")


def test_a_name_that_cannot_be_looked_up_is_a_connect_error():
    """At connect time a failed lookup is an ordinary, retryable transport error."""
    with safe_client(allow=[], resolve=FakeDNS({})) as client, pytest.raises(httpx.ConnectError):
        client.get("https://gone.example/")


def test_redirects_are_returned_not_followed(receiver):
    dns = FakeDNS({"receiver.test": ["127.0.0.1"], "internal.example": ["10.0.0.5"]})
    base = f"http://receiver.test:{receiver.port}"
    with safe_client(allow=LOOPBACK, resolve=dns) as client:
        response = client.post(f"{base}/redirect", content=b"{}")
        assert response.status_code == 308
        assert response.headers["location"] == "http://10.0.0.5/internal"
        assert response.next_request is not None  # httpx would have gone on; it did not

        # Not even when a caller asks for it, nor to a name the guard would otherwise check.
        again = client.get(f"{base}/redirect?to=http://internal.example/", follow_redirects=True)
        assert again.status_code == 308
    assert [r["path"] for r in receiver.requests] == [
        "/redirect",
        "/redirect?to=http://internal.example/",
    ]
    assert dns.calls.count("internal.example") == 0


def test_proxy_environment_variables_are_ignored(receiver, monkeypatch):
    """A proxy would open the connection on Haven's behalf, past the guard."""
    proxy = f"http://127.0.0.1:{receiver.port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    dns = FakeDNS({"metadata.example": ["169.254.169.254"]})
    with safe_client(allow=LOOPBACK, resolve=dns) as client, pytest.raises(UnsafeDestination):
        client.get("https://metadata.example/latest/meta-data/")
    assert receiver.connections == 0


def test_the_client_has_the_requested_timeout():
    with safe_client(allow=[], timeout=3.5) as client:
        assert client.timeout == httpx.Timeout(3.5)
        assert client.follow_redirects is False


# --- TLS: the connection goes to the checked IP, the certificate is checked against the name ---


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch) -> Iterator[Receiver]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    # Trust the test certificate as if a public CA had issued it.
    monkeypatch.setattr(outbound, "_tls_context", lambda: ssl.create_default_context(cafile=cert))
    server = Receiver(tls=server_tls)
    yield server
    server.stop()


def test_tls_uses_the_url_host_for_sni_and_certificate_checks(tls_receiver):
    dns = FakeDNS({"hooks.test": ["127.0.0.1"]})
    with safe_client(allow=LOOPBACK, resolve=dns) as client:
        response = client.post(f"https://hooks.test:{tls_receiver.port}/hook", content=b"{}")
        assert response.status_code == 200
        assert tls_receiver.server_names == ["hooks.test"]
        assert tls_receiver.requests[-1]["host"] == f"hooks.test:{tls_receiver.port}"

        # The same server by its IP: the certificate names hooks.test, so TLS refuses.
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            client.get(f"https://127.0.0.1:{tls_receiver.port}/")
    assert len(tls_receiver.requests) == 1
