"""An image fetched from a URL a user names, without letting the URL reach what it must not
(server-side request forgery: the cloud's metadata service, the database, an admin page on
the internal network).

A URL is fetched only when every step passes (docs/security.md, "Importing from a URL"):

- **The URL**: ``http`` or ``https``, a host, no ``user:password@``, no IPv6 zone id, a port
  in the allowed list (``AVENUE_URL_IMPORT_PORTS``: 80 and 443 unless configured); with an
  allow-list (``AVENUE_URL_IMPORT_HOSTS``), a host it names (``shop.example`` exactly,
  ``.example`` any name under it).
- **The addresses**: the host is looked up once (``getaddrinfo``, as the connection would;
  within the deadline) and *every* address it gives must be public (:func:`forbidden`):
  not loopback, private (RFC 1918, IPv6 unique local ``fc00::/7``), link-local (the metadata
  service at 169.254.169.254), shared (CGNAT ``100.64.0.0/10``), multicast, reserved,
  unspecified, broadcast, site-local, nor an IPv6 form that embeds such an IPv4 (mapped
  ``::ffff:0:0/96``, compatible ``::/96``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96`` and
  ``64:ff9b:1::/48``, Teredo ``2001::/32``), unless in a network the configuration trusts
  (``AVENUE_URL_IMPORT_ALLOW_NETWORKS``). Numeric hosts in any spelling the resolver takes
  (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``, ``[::ffff:127.0.0.1]``) are checked as
  the address they become, since that is what is checked and connected to.
- **The connection** goes to those checked addresses (:func:`avenue.outbound.pinned`): no
  second lookup, so a name whose answer changes between the check and the connection
  (DNS rebinding) cannot win; Host, SNI and the certificate are still the host's.
- **Redirects** (at most ``AVENUE_URL_IMPORT_MAX_REDIRECTS``) are each checked the same way.
- **One deadline** (``AVENUE_URL_IMPORT_SECONDS``) for the whole fetch: lookups, connections,
  redirects and every read; **a byte limit** (the upload limit) held while reading, whatever
  Content-Length said. An answer declared as text, HTML, JSON or another non-image
  ``application/`` type is refused before its body is read.

The bytes are then the caller's to store through the same service call as an upload (type
sniffing, pixel limits, ...). Every refusal is a :class:`FetchRefused` with its code.
No Flask and no database here: :func:`fetch_image` is tested without an app.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from avenue.errors import AvenueError
from avenue.outbound import BodyTooLarge, Deadline, pinned, read_capped

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "Avenue-media-url-import/1"

# What each refusal answers (its code: the report's, and the error's). What the supplier did
# (no such name, no connection, an error status, endless redirects, too slow) is 422: the
# request was understood and the URL it named is unusable. 502/504 would say this service is
# at fault, and every 5xx alert (and Schemathesis) counts them as ours: a supplier's outage
# paged the shop's ops (issue 62). 5xx stays for this service's own faults.
BAD_URL, HOST_NOT_ALLOWED, FORBIDDEN_ADDRESS = "bad_url", "host_not_allowed", "forbidden_address"
FETCH_FAILED, HTTP_ERROR, TOO_MANY_REDIRECTS = "fetch_failed", "http_error", "too_many_redirects"
TIMEOUT, TOO_LARGE, NOT_AN_IMAGE = "timeout", "too_large", "not_an_image"
STATUSES = {BAD_URL: 400, HOST_NOT_ALLOWED: 422, FORBIDDEN_ADDRESS: 422, FETCH_FAILED: 422, HTTP_ERROR: 422,
            TOO_MANY_REDIRECTS: 422, TIMEOUT: 422, TOO_LARGE: 413, NOT_AN_IMAGE: 415}

PUBLIC_ONLY = ("Images are imported from public addresses only, unless an admin trusts the network "
               "with AVENUE_URL_IMPORT_ALLOW_NETWORKS.")

CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
BROADCAST = ipaddress.IPv4Address("255.255.255.255")


class FetchRefused(AvenueError):
    """A URL not fetched, and why: ``code`` (one of :data:`STATUSES`) and its status."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, code=code, **details)
        self.status = STATUSES[code]


# --- addresses ----------------------------------------------------------------------------


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, compatible, 6to4, NAT64 (the
    well-known /96, and the local-use /48 read as RFC 6052's /48 and /96 layouts), Teredo
    (its server and its client)."""
    value = int(address)
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in IPV4_COMPATIBLE and value > 1:
        return [ipaddress.IPv4Address(value & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    if address in NAT64:
        return [ipaddress.IPv4Address(value & 0xFFFFFFFF)]
    if address in NAT64_LOCAL:
        # /48: the IPv4's first two octets in bits 48-63, bits 64-71 zero, the last two in 72-87.
        high, low = (value >> 64) & 0xFFFF, (value >> 40) & 0xFFFF
        return [ipaddress.IPv4Address((high << 16) | low), ipaddress.IPv4Address(value & 0xFFFFFFFF)]
    return []


def forbidden(address: Address, trusted: Sequence[Network] = ()) -> str | None:
    """Why a connection to ``address`` is refused (None: it is public, or in a ``trusted``
    network). An IPv6 address embedding an IPv4 one is refused when that one is."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%")[0])
    if any(address.version == network.version and address in network for network in trusted):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # a v6 socket to it reaches the IPv4 address itself
            return forbidden(address.ipv4_mapped, trusted)
        if address in NAT64_LOCAL:  # whatever it embeds: a translator of the local network's
            return "a local-use NAT64 address (64:ff9b:1::/48)"
        for inner in embedded_ipv4(address):
            reason = forbidden(inner, trusted)
            if reason is not None:
                return f"it embeds {inner}, {reason}"
    for test, reason in (
            (address.is_unspecified, "unspecified"),
            (address.is_loopback, "loopback"),
            (address.is_link_local, "link-local (where cloud metadata services answer)"),
            (address in CGNAT, "shared address space (CGNAT, 100.64.0.0/10)"),
            (address == BROADCAST, "broadcast"),
            (address.is_multicast, "multicast"),
            (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
            (isinstance(address, ipaddress.IPv6Address) and address in ipaddress.IPv6Network("fc00::/7"),
             "unique local (fc00::/7)"),
            (address.is_private, "private"),
            (address.is_reserved, "reserved"),
            (not address.is_global, "not a public address")):
        if test:
            return reason
    return None


# --- the policy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """What may be fetched, and within what (docs/configuration.md, ``AVENUE_URL_IMPORT_*``)."""

    max_bytes: int
    seconds: float = 20.0
    max_redirects: int = 5
    hosts: tuple[str, ...] = ()  # empty: any host
    ports: frozenset[int] = field(default_factory=lambda: frozenset({80, 443}))  # empty: any port
    networks: tuple[Network, ...] = ()  # trusted despite being non-public

    def host_allowed(self, host: str) -> bool:
        if not self.hosts:
            return True
        return any(host == entry or (entry.startswith(".") and host.endswith(entry)) for entry in self.hosts)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) as networks; ValueError names the first bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an address or a network (CIDR)") from None
    return tuple(networks)


def parse_ports(value: str) -> frozenset[int]:
    """``80,443`` as ports (empty: any); ValueError on anything else."""
    ports = set()
    for item in (part.strip() for part in value.split(",")):
        if item:
            if not item.isdigit() or not 0 < int(item) < 65536:
                raise ValueError(f"{item!r} is not a port number")
            ports.add(int(item))
    return frozenset(ports)


def parse_hosts(values: Iterable[str]) -> tuple[str, ...]:
    """Allowed host names, lowercased, without a trailing dot (``*.x`` is spelled ``.x``)."""
    hosts = []
    for value in values:
        host = value.strip().lower().rstrip(".")
        host = "." + host[2:] if host.startswith("*.") else host
        if host:
            hosts.append(host)
    return tuple(hosts)


# --- the URL --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One URL's parts as the connection uses them."""

    url: str
    scheme: str
    host: str  # lowercased, ASCII (IDNA), IPv6 without brackets
    port: int
    path: str  # path and query, percent-encoded


def _refuse_url(message: str) -> FetchRefused:
    return FetchRefused(BAD_URL, message)


def parse_url(url: object, policy: Policy) -> Target:
    """``url`` checked as far as it can be without a lookup (400 ``bad_url``, 422
    ``host_not_allowed``)."""
    if not isinstance(url, str) or not url.strip():
        raise _refuse_url("Send the image's address as url: an http or https URL.")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise _refuse_url(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise _refuse_url("The URL holds a space or a control character.")
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed [ of an IPv6 host, ...
        raise _refuse_url("The URL is malformed.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _refuse_url("Only http and https URLs are fetched.")
    if "@" in parts.netloc:
        raise _refuse_url("A URL with a user name or password (user:password@) is not fetched.")
    if "\\" in parts.netloc:
        raise _refuse_url("The URL's host holds a backslash.")
    try:
        port = parts.port
        host = parts.hostname or ""
    except ValueError:
        raise _refuse_url("The URL's port is not a number from 1 to 65535.") from None
    if port is None:
        port = 443 if scheme == "https" else 80
    if not port:
        raise _refuse_url("The URL's port is not a number from 1 to 65535.")
    if not host:
        raise _refuse_url("The URL names no host.")
    if "%" in host:
        raise _refuse_url("An IPv6 address with a zone id (%...) is not fetched.")
    try:
        host = host.rstrip(".").encode("idna").decode("ascii") if not host.isascii() else host.rstrip(".")
    except UnicodeError:
        raise _refuse_url("The URL's host is not a valid name.") from None
    if not host or not all(char.isalnum() or char in "-._:" for char in host):
        raise _refuse_url("The URL's host is not a valid name.")
    if policy.ports and port not in policy.ports:
        ports = ", ".join(str(number) for number in sorted(policy.ports))
        # The refusal a supplier on another port meets first: it names the setting an admin
        # changes to allow one, so the message is the fix, not a search through the docs.
        raise _refuse_url(f"Port {port} is not fetched (only {ports}); an admin allows others with "
                          "AVENUE_URL_IMPORT_PORTS.")
    if not policy.host_allowed(host):
        raise FetchRefused(HOST_NOT_ALLOWED, f"{host} is not among the hosts images may be imported from.")
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return Target(url, scheme, host, port, path)


# --- the lookup ---------------------------------------------------------------------------


def resolve(host: str, port: int, deadline: Deadline) -> list[str]:
    """The addresses ``host`` has, from one ``getaddrinfo`` (numeric spellings included) run
    in a thread so the deadline bounds it (a lookup left running ends on its own)."""
    found: list[Any] = []
    failed: list[OSError] = []

    def lookup() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP))
        except OSError as error:
            failed.append(error)
        except UnicodeError as error:
            failed.append(OSError(str(error)))

    thread = threading.Thread(target=lookup, name="url-import-lookup", daemon=True)
    thread.start()
    thread.join(deadline.left())
    if thread.is_alive():
        raise TimeoutError("the name lookup did not answer in time")
    if failed or not found:
        raise FetchRefused(FETCH_FAILED, f"{host} could not be looked up (no such name, or no answer).")
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in found:
        if sockaddr[0] not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


def checked_addresses(target: Target, policy: Policy, deadline: Deadline) -> list[str]:
    """The host's addresses, each allowed (422 ``forbidden_address`` names the first that is
    not: one is enough, since any of them may be the one connected to)."""
    addresses = resolve(target.host, target.port, deadline)
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise FetchRefused(FORBIDDEN_ADDRESS, f"{target.host} resolves to {text}, not an address.") \
                from None
        reason = forbidden(address, policy.networks)
        if reason is None:
            continue
        # Both name the setting that trusts a network (a supplier on the shop's own network).
        if _numeric(target.host):  # the caller wrote the address: say which it is
            raise FetchRefused(FORBIDDEN_ADDRESS, f"{target.host} is {text}: {reason}. {PUBLIC_ONLY}",
                               address=text)
        # A name: the address it has on this network is not told (no oracle of internal names).
        raise FetchRefused(FORBIDDEN_ADDRESS, f"{target.host} has a non-public address ({reason}). "
                                              f"{PUBLIC_ONLY}")
    return addresses


def _numeric(host: str) -> bool:
    """Whether ``host`` is an address in any spelling the resolver takes as one (``127.1``,
    ``0x7f.1``, ``2130706433``, IPv6), not a name."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)
        return True
    except OSError:
        return False


# --- the fetch ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """What a URL gave: the URL it was finally fetched from (after redirects), a file name (the
    last part of its path), its declared type and its bytes."""

    url: str
    filename: str
    content_type: str
    data: bytes


def _not_an_image(content_type: str) -> bool:
    """Declared as something no image is: text, or an ``application/`` type other than the
    generic binary one (a missing type is left to the upload's sniffing)."""
    kind = content_type.split(";")[0].strip().lower()
    return kind.startswith("text/") or (kind.startswith("application/")
                                        and kind != "application/octet-stream")


def _filename(target: Target) -> str:
    """The last part of the URL's path, decoded, as an upload's file name (``image`` when
    there is none): no slash, backslash or control character, at most 200 characters."""
    name = unquote(target.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1])
    name = "".join(char for char in name.replace("\\", "/").rsplit("/", 1)[-1] if char.isprintable())
    return name.strip()[-200:] or "image"


def fetch_image(url: object, policy: Policy) -> Fetched:
    """Fetch ``url`` under ``policy`` (the module's docstring), or FetchRefused."""
    deadline = Deadline(policy.seconds)
    headers = {"User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"}
    target = first = parse_url(url, policy)
    try:
        for _hop in range(policy.max_redirects + 1):
            addresses = checked_addresses(target, policy, deadline)
            with pinned(target.scheme, target.host, target.port, target.path, addresses=addresses,
                        deadline=deadline, headers=headers) as response:
                status = response.status
                if status in REDIRECTS:
                    location = response.getheader("Location")
                    if not location:
                        raise FetchRefused(HTTP_ERROR, f"{_answered(target, status)} without a Location.",
                                           upstream_status=status)
                    target = parse_url(urljoin(target.url, location.strip()), policy)
                    continue
                if not 200 <= status < 300:
                    raise FetchRefused(HTTP_ERROR, f"{_answered(target, status)}.", upstream_status=status)
                content_type = response.getheader("Content-Type") or ""
                if _not_an_image(content_type):
                    raise FetchRefused(NOT_AN_IMAGE, f"{target.url} is {content_type.split(';')[0]}, not an "
                                                     "image.")
                data = read_capped(response, policy.max_bytes)
                deadline.left()  # the last read's end counts too
                return Fetched(target.url, _filename(target), content_type, data)
    except TimeoutError:
        raise FetchRefused(TIMEOUT, f"{target.host} did not send the image within {policy.seconds:g} s "
                                    "(waited that long, then gave up).") from None
    except BodyTooLarge:
        raise FetchRefused(TOO_LARGE, f"The image is larger than {policy.max_bytes} bytes.") from None
    except ssl.SSLError as error:
        raise FetchRefused(FETCH_FAILED, f"The TLS connection to {target.host} failed "
                                         f"({error.reason or 'handshake'}).") from None
    except (OSError, http.client.HTTPException):
        raise FetchRefused(FETCH_FAILED, f"{target.host} could not be reached, or its answer was "
                                         "cut or malformed.") from None
    raise FetchRefused(TOO_MANY_REDIRECTS, f"{first.host} redirected more than {policy.max_redirects} times "
                                           f"(the last time to {target.url}).")


def _answered(target: Target, status: int) -> str:
    """What the supplier answered, in words: its host, the status and its phrase, and the URL."""
    try:
        phrase = " " + HTTPStatus(status).phrase
    except ValueError:  # a status no RFC names
        phrase = ""
    return f"{target.host} answered {status}{phrase} to {target.url}"
