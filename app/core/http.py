"""Outbound HTTP: the SSRF guard for webhooks and anything else Haven sends out.

Two checks use one rule. `check_url` runs when an administrator saves an address: https only
(plain http only inside an allow-listed range), no user name or password in the address, and
every address the host resolves to must be public. `safe_client` repeats the rule at connect
time: its network backend resolves the host itself, checks every address and connects to the
address it checked, so a DNS answer that changes between the two (DNS rebinding) cannot send
Haven to an internal service. TLS still uses the name from the URL for SNI and certificate
checks, and the Host header is unchanged. The client never follows redirects and ignores proxy
environment variables (a proxy would connect on Haven's behalf, past the check).

Administrators allow-list ranges with HAVEN_WEBHOOK_ALLOW_CIDRS (the DSL's mail relay may sit on
the school LAN); an allow-listed address is accepted whatever its kind, and plain http is
accepted only when every address is allow-listed.
"""

import contextvars
import ipaddress
import re
import socket
import ssl
import typing
from collections.abc import Callable, Iterable, Sequence

import httpcore
import httpx

from app.core.config import IPNetwork
from app.core.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# socket.getaddrinfo, or a stand-in with its signature and answers (tuples whose [4][0] is the IP).
Resolver = Callable[..., Sequence[tuple]]

ALLOW_SETTING = "HAVEN_WEBHOOK_ALLOW_CIDRS"
_ALLOW_HINT = (
    "Haven only sends to public addresses unless an administrator allow-lists the range "
    f"({ALLOW_SETTING})."
)


class UnsafeDestination(InvalidInput):
    """An outbound address Haven refuses to send to; `detail` says why, for an administrator."""

    title = "Address not allowed"


# --- which addresses are public -------------------------------------------------------------

_PRIVATE = "a private network address"
_DOCUMENTATION = "a documentation address, which never belongs to a real server"

_IPV4_RANGES: list[tuple[ipaddress.IPv4Network, str]] = [
    (ipaddress.IPv4Network(net), reason)
    for net, reason in [
        ("255.255.255.255/32", "the broadcast address"),
        ("0.0.0.0/32", "the unspecified address, which reaches this server itself"),
        ("0.0.0.0/8", "a 'this network' address (0.0.0.0/8), never a real destination"),
        ("127.0.0.0/8", "a loopback address (this server itself)"),
        ("10.0.0.0/8", _PRIVATE),
        ("172.16.0.0/12", _PRIVATE),
        ("192.168.0.0/16", _PRIVATE),
        ("169.254.169.254/32", "the cloud metadata service, a link-local address"),
        ("169.254.0.0/16", "a link-local address"),
        ("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10), private to a provider"),
        ("192.0.0.0/24", "an IETF protocol address (192.0.0.0/24), not a public address"),
        ("192.0.2.0/24", _DOCUMENTATION),
        ("198.51.100.0/24", _DOCUMENTATION),
        ("203.0.113.0/24", _DOCUMENTATION),
        ("198.18.0.0/15", "a benchmarking address (198.18.0.0/15), not a public address"),
        ("192.88.99.0/24", "a reserved address (the retired 6to4 relay range)"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address (240.0.0.0/4)"),
    ]
]

_IPV6_RANGES: list[tuple[ipaddress.IPv6Network, str]] = [
    (ipaddress.IPv6Network(net), reason)
    for net, reason in [
        ("::/128", "the unspecified IPv6 address, which reaches this server itself"),
        ("::1/128", "the IPv6 loopback address (this server itself)"),
        ("64:ff9b:1::/48", "a local-use NAT64 address, private to a network"),
        ("100::/64", "a discard-only IPv6 address"),
        ("2001:db8::/32", _DOCUMENTATION),
        ("3fff::/20", _DOCUMENTATION),
        ("2001::/23", "an IETF protocol IPv6 address (such as Teredo), not a public address"),
        ("fc00::/7", "an IPv6 unique local address, the IPv6 form of a private network"),
        ("fe80::/10", "an IPv6 link-local address"),
        ("fec0::/10", "an IPv6 site-local address, private to a network"),
        ("ff00::/8", "an IPv6 multicast address"),
    ]
]
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for, and the name of the form, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "an IPv4-mapped IPv6 form"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "a NAT64 IPv6 form"
    if ip.sixtofour is not None:
        return ip.sixtofour, "a 6to4 IPv6 form"
    return None


def _ipv4_reason(ip: ipaddress.IPv4Address) -> str | None:
    for network, reason in _IPV4_RANGES:
        if ip in network:
            return reason
    if not ip.is_global:  # anything the table misses, by Python's own list
        return "a reserved address, not a public one"
    return None


def _reason(ip: IPAddress) -> str | None:
    """Why `ip` is not a public address, as a phrase; None if it is public."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _ipv4_reason(ip)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner, form = embedded
        inner_reason = _ipv4_reason(inner)
        return f"{form} of {inner}, {inner_reason}" if inner_reason else None
    for network, reason in _IPV6_RANGES:
        if ip in network:
            return reason
    if ip not in _IPV6_GLOBAL_UNICAST:
        return "a reserved IPv6 address, outside the public range 2000::/3"
    return None


def _allowed(ip: IPAddress, allow: Iterable[IPNetwork]) -> bool:
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(ip)):
        candidates.append(embedded[0])
    return any(
        candidate.version == network.version and candidate in network
        for candidate in candidates
        for network in allow
    )


# --- the rule, shared by save time and connect time -----------------------------------------

# Old numeric spellings that getaddrinfo reads as IPv4 without DNS: 127.1, 0x7f.1, 2130706433.
_LEGACY_IPV4 = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _parse(text: str) -> IPAddress:
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(text.split("%", 1)[0])  # a scope names an interface, not a range
    return ip


def _spelled_as_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _LookupFailed(Exception):
    pass


def _resolve(host: str, port: int, resolve: Resolver) -> tuple[list[str], bool]:
    """The addresses to check and connect to, and whether `host` was itself an address."""
    literal = _literal(host)
    if literal is not None:
        return [str(literal)], True
    try:
        answers = resolve(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _LookupFailed(str(exc)) from exc
    addresses = list(dict.fromkeys(str(answer[4][0]) for answer in answers))
    if not addresses:
        raise _LookupFailed("no addresses")
    return addresses, False


def _check_addresses(
    host: str, addresses: list[str], *, literal: bool, plain_http: bool, allow: list[IPNetwork]
) -> None:
    for address in addresses:
        try:
            ip = _parse(address)
        except ValueError:
            raise UnsafeDestination(
                f"The address {host} resolves to {address!r}, which is not an IP address."
            ) from None
        if _allowed(ip, allow):
            continue
        if not literal:
            where = f"The address {host} resolves to {ip},"
        elif _spelled_as_ip(host):
            where = f"The address {host} is"
        else:  # an old numeric spelling such as 127.1
            where = f"The address {host} stands for {ip},"
        reason = _reason(ip)
        if reason is not None:
            raise UnsafeDestination(f"{where} {reason}. {_ALLOW_HINT}")
        if plain_http:
            outside = "is outside" if where.endswith(" is") else "which is outside"
            raise UnsafeDestination(
                f"{where.removesuffix(' is')} {outside} the allow-listed ranges, so Haven sends "
                "to it only over https://. Change the address to start with https://."
            )


def _check_shape(url: httpx.URL, allow: list[IPNetwork]) -> tuple[str, int, bool]:
    """The host, port and whether it is plain http, or UnsafeDestination; no DNS."""
    scheme = url.scheme
    if scheme not in ("http", "https"):
        shown = f"{scheme}://" if scheme else "no scheme"
        raise UnsafeDestination(
            f"The address must start with https:// ({shown} was given); Haven sends webhooks "
            "over https only."
        )
    if url.userinfo:
        raise UnsafeDestination(
            "The address contains a user name or password before the host (user:password@); "
            "remove it, as addresses appear in logs and delivery history. Haven signs every "
            "message so the receiver can check it came from Haven."
        )
    host = url.host
    if not host:
        raise UnsafeDestination("The address has no host name, such as hooks.example.org.")
    port = url.port if url.port is not None else (443 if scheme == "https" else 80)
    if not 1 <= port <= 65535:
        raise UnsafeDestination(f"The port {port} is not valid; use a port from 1 to 65535.")
    plain_http = scheme == "http"
    if plain_http and not allow:
        raise UnsafeDestination(
            f"The address must start with https:// so that what Haven sends is encrypted; "
            f"http:// is allowed only for addresses inside a range an administrator has "
            f"allow-listed ({ALLOW_SETTING})."
        )
    return host, port, plain_http


def check_url(
    url: str, *, allow: list[IPNetwork], resolve: Resolver = socket.getaddrinfo
) -> list[str]:
    """Check an outbound address when it is saved; returns the addresses it resolved to.

    Raises UnsafeDestination (an InvalidInput, so a 422 with `detail` for the administrator)
    when the address is malformed, not https (http only inside allow-listed ranges), carries
    a user name or password, cannot be looked up, or any resolved address is not public and
    not inside an allow-listed range."""
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise UnsafeDestination(f"The address is not a valid URL: {exc}.") from None
    host, port, plain_http = _check_shape(parsed, allow)
    try:
        addresses, literal = _resolve(host, port, resolve)
    except _LookupFailed as exc:
        raise UnsafeDestination(
            f"Haven could not look up the address {host} ({exc}). Check the spelling, or try "
            "again if the name was only just created."
        ) from None
    _check_addresses(host, addresses, literal=literal, plain_http=plain_http, allow=allow)
    return addresses


# --- connect time ---------------------------------------------------------------------------

# Whether the request being sent on this thread is plain http (the stricter rule), for the
# backend, which sees only host and port. Sync httpcore connects on the calling thread.
_PLAIN_HTTP: contextvars.ContextVar[bool] = contextvars.ContextVar("haven_plain_http", default=True)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks, and connects to the checked address; never looks the name up twice."""

    def __init__(self, *, allow: list[IPNetwork], resolve: Resolver) -> None:
        self._allow = list(allow)
        self._resolve = resolve
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses, literal = _resolve(host, port, self._resolve)
        except _LookupFailed as exc:
            raise httpcore.ConnectError(f"could not look up {host}: {exc}") from exc
        _check_addresses(
            host, addresses, literal=literal, plain_http=_PLAIN_HTTP.get(), allow=self._allow
        )
        failure: Exception | None = None
        for address in addresses:  # each one checked above; the name is not resolved again
            try:
                return self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise UnsafeDestination("Haven does not send to local sockets.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _tls_context() -> ssl.SSLContext:
    """Certificate checks against the usual public CAs (certifi), ignoring SSL_CERT_* variables."""
    return httpx.create_ssl_context(trust_env=False)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, *, allow: list[IPNetwork], resolve: Resolver) -> None:
        super().__init__(trust_env=False, retries=0)
        self._allow = list(allow)
        # The same pool httpx builds, with the guarded backend in place of the plain one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_tls_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            retries=0,
            network_backend=_GuardedBackend(allow=self._allow, resolve=resolve),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _host, _port, plain_http = _check_shape(request.url, self._allow)
        token = _PLAIN_HTTP.set(plain_http)
        try:
            return super().handle_request(request)
        finally:
            _PLAIN_HTTP.reset(token)


class _NoRedirectClient(httpx.Client):
    def send(self, request: httpx.Request, **kwargs) -> httpx.Response:
        kwargs["follow_redirects"] = False  # even if a caller asks for it
        return super().send(request, **kwargs)


def safe_client(
    *, allow: list[IPNetwork], timeout: float = 10.0, resolve: Resolver = socket.getaddrinfo
) -> httpx.Client:
    """An httpx.Client for outbound requests to addresses others chose.

    Every connection is checked with the rule of `check_url` and made to the address that was
    checked; a refusal raises UnsafeDestination (not an httpx error: catch both). Redirects are
    never followed (a 3xx comes back as it is), proxies from the environment are ignored, and
    TLS verifies the certificate against the host name in the URL. Use it as a context manager
    or close it."""
    return _NoRedirectClient(
        transport=_GuardedTransport(allow=allow, resolve=resolve),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    )
