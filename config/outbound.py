"""Outbound HTTP to addresses that people configure: webhook targets, the SMS provider, the
heartbeat monitor and the audit checkpoint witness. One door for all of them.

The rules (docs/alerting.md, "Outbound requests"):

- `http` and `https` only, with a host, and no `user:password@` in the URL; a host that looks
  like a number must be a plain dotted IPv4 address (no `2130706433`, `0177.0.0.1`, `0x7f.1`).
- The host is resolved once and every address it resolves to must be public: loopback,
  private, shared, link-local, multicast, reserved and unspecified addresses are refused
  (IPv4-mapped and NAT64 IPv6 addresses are judged by the IPv4 address inside), unless
  OUTBOUND_ALLOW_PRIVATE_ADDRESSES is on (local use, tests with a local receiver) or the
  address is in OUTBOUND_ALLOWED_NETWORKS.
- The connection goes to an address that was checked, never to a second lookup that DNS
  rebinding could answer differently; TLS still verifies the certificate against the host name.
- Redirects are never followed and no proxy is used. At most MAX_READ bytes of the answer are
  read, and only a short printable excerpt of it is handed back, with secrets masked.

Messages name the scheme, host and port only: a webhook URL's path is often its credential.
"""

import hashlib
import hmac
import http.client
import ipaddress
import re
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.errors import HostUnresolvable, OutboundError, URLRefused

SCHEMES = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048
MAX_READ = 4096
EXCERPT_LENGTH = 200
TIMESTAMP_HEADER = "X-Ledgerguard-Timestamp"
SIGNATURE_HEADER = "X-Ledgerguard-Signature"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_SECRET_VALUE = re.compile(
    r"(?i)([\w-]*(?:password|passwd|secret|token|api[_-]?key|signature|authorization|bearer)"
    r"[\w-]*)"
    r"(\W{1,3})(\"[^\"]*\"|'[^']*'|[^\s,;&}\"']+)"
)


@dataclass(frozen=True)
class Destination:
    """A URL that passed the rules, with the addresses it may be reached at."""

    scheme: str
    host: str  # lower case, IDNA-encoded; an IPv6 literal without brackets
    port: int
    target: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str

    def __str__(self) -> str:
        return f"{self.status} {self.excerpt}".strip()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`. Never with an empty key: an HMAC under
    an empty key proves nothing, yet a receiver might trust it."""
    if not secret:
        raise ValueError("refusing to sign with an empty key")
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def signature_headers(secret: str, body: bytes) -> dict[str, str]:
    """The timestamp and signature headers for `body`, or none at all without a secret."""
    if not secret:
        return {}
    timestamp = str(int(time.time()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def describe(url: str) -> str:
    """The scheme, host and port of `url`, for messages; never its path, query or user."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an unreadable URL"
    return f"{parts.scheme or '?'}://{host}{port}"[:200]


def _refuse(code: str, message: str) -> URLRefused:
    return URLRefused(message, code=f"outbound.{code}")


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any."""
    if address.version == 4:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_problem(address: IPAddress) -> str | None:
    """Why connecting to `address` is refused by default ("a loopback address"), or None."""
    embedded = _embedded_ipv4(address)
    candidates: list[IPAddress | None]
    if address.version == 6 and (address.ipv4_mapped is not None or address in NAT64):
        candidates = [embedded]  # judged by the IPv4 address inside, as the packets will be
    else:
        candidates = [address, embedded]  # 6to4: both must be public
    for candidate in candidates:
        if candidate is None:
            continue
        for name, refused in (
            ("an unspecified", candidate.is_unspecified),
            ("a loopback", candidate.is_loopback),
            ("a link-local", candidate.is_link_local),
            ("a multicast", candidate.is_multicast),
            ("a private", candidate.is_private),
            ("a reserved", candidate.is_reserved),
            ("a non-public", not candidate.is_global),
        ):
            if refused:
                return f"{name} address"
    return None


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(n, strict=False) for n in settings.OUTBOUND_ALLOWED_NETWORKS]
    except ValueError as exc:
        raise ImproperlyConfigured(f"OUTBOUND_ALLOWED_NETWORKS: {exc}") from exc


def _check_address(address: IPAddress, host: str) -> None:
    problem = address_problem(address)
    if problem is None or settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES:
        return
    if any(address in network for network in _allowed_networks()):
        return
    raise _refuse(
        "address_not_allowed",
        f"{host} is {address}, {problem}; outbound requests go to public addresses only "
        "(OUTBOUND_ALLOW_PRIVATE_ADDRESSES, OUTBOUND_ALLOWED_NETWORKS)",
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    last = host.rstrip(".").rsplit(".", 1)[-1]
    if _NUMERIC_LABEL.match(last):
        # Resolvers read 2130706433, 0177.0.0.1 and 0x7f.1 as 127.0.0.1; nobody means them.
        raise _refuse("host_invalid", "a numeric host must be a dotted IPv4 address (1.2.3.4)")
    return None


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise HostUnresolvable(f"{host} does not resolve: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise HostUnresolvable(f"{host} does not resolve")
    return tuple(addresses)


def check_url(url: str) -> Destination:
    """Apply the rules to `url`; raises URLRefused (HostUnresolvable when DNS fails)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise _refuse("url_invalid", f"a URL of 1 to {MAX_URL_LENGTH} characters is needed")
    if _UNSAFE_CHARS.search(url):
        raise _refuse("url_invalid", "the URL holds spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _refuse("url_invalid", f"the URL cannot be read: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise _refuse("scheme_not_allowed", f"only http and https URLs, not {scheme or 'none'}:")
    if "@" in parts.netloc:
        raise _refuse(
            "credentials_in_url",
            "no user name or password in the URL; webhooks "
            "are authenticated by their signature or a secret path",
        )
    if not parts.hostname:
        raise _refuse("host_missing", "the URL names no host")
    if port == 0:
        raise _refuse("url_invalid", "port 0 is not a port")
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise _refuse("url_invalid", f"the host name is not valid: {exc}") from exc
    port = port or SCHEMES[scheme]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not target.isascii():
        raise _refuse("url_invalid", "percent-encode the non-ASCII characters of the path")
    literal = _literal(host)
    if literal is not None:
        _check_address(literal, host)
        return Destination(scheme, host, port, target, (str(literal),))
    addresses = _resolve(host, port)
    for address in addresses:
        # Every answer must pass: which one a later lookup returns is the resolver's choice.
        _check_address(ipaddress.ip_address(address), host)
    return Destination(scheme, host, port, target, addresses)


def excerpt(data: bytes) -> str:
    """A short, printable, one-line excerpt with anything that looks like a secret masked."""
    text = data.decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else " " for c in text)
    text = _SECRET_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 3] + "..."


def _connection(destination: Destination, timeout: float) -> http.client.HTTPConnection:
    connection: http.client.HTTPConnection
    if destination.scheme == "https":
        connection = http.client.HTTPSConnection(
            destination.host,
            destination.port,
            timeout=timeout,
            context=ssl.create_default_context(),
        )
    else:
        connection = http.client.HTTPConnection(destination.host, destination.port, timeout=timeout)

    def connect_checked(
        _address: object,
        timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        # The socket goes to a checked address; the Host header, SNI and the certificate check
        # still use the host name, which http.client takes from the connection's host.
        error: OSError = OSError("no address")
        for address in destination.addresses:
            try:
                return socket.create_connection(
                    (address, destination.port), timeout, source_address
                )
            except OSError as exc:
                error = exc
        raise error

    connection._create_connection = connect_checked  # type: ignore[attr-defined]
    return connection


def request(
    url: str,
    *,
    method: str = "POST",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
) -> Answer:
    """Send one request under the rules and return the 2xx answer, or raise OutboundError.

    Refused URLs, redirects and 4xx answers (but 408 and 429) are permanent; an unresolvable
    host, a connection or TLS failure, a timeout and 5xx answers are worth another try.
    """
    try:
        destination = check_url(url)
    except HostUnresolvable as exc:
        raise OutboundError(f"{describe(url)}: {exc.message}", code=exc.code) from exc
    except URLRefused as exc:
        raise OutboundError(
            f"refused by the outbound rules ({exc.code}): {exc.message}",
            permanent=True,
            code=exc.code,
        ) from exc
    connection = _connection(destination, timeout)
    try:
        connection.request(method, destination.target, body=body, headers=headers or {})
        response = connection.getresponse()
        status, data = response.status, response.read(MAX_READ)
    except (OSError, http.client.HTTPException) as exc:
        raise OutboundError(
            f"could not reach {destination}: {type(exc).__name__}: {exc}"[:500],
            code="outbound.unreachable",
        ) from exc
    finally:
        connection.close()
    if 300 <= status < 400:
        raise OutboundError(
            f"HTTP {status} from {destination}: redirects are not followed",
            permanent=True,
            code="outbound.redirect",
        )
    if status >= 400:
        # 4xx: the receiver will never take it (but 408 and 429 ask us to come back).
        permanent = 400 <= status < 500 and status not in (408, 429)
        raise OutboundError(
            f"HTTP {status} from {destination}", permanent=permanent, code="outbound.http_error"
        )
    return Answer(status, excerpt(data))
