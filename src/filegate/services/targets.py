"""Outbound URLs (webhook targets) vetted against SSRF: where may filegate send a request?

A URL passes when it is plain http(s) and every address its host resolves to is globally
routable. ``Target.addresses`` are the vetted addresses: the caller connects to one of them,
never to the name again, so a DNS answer that changes after the check (rebinding) cannot steer
the request inward.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from filegate.errors import ErrorCode, FilegateError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Browsers and proxies handle about this much; the column holds no more.
MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
# WHATWG URL: a host whose last label is a number is an IPv4 address in any of its spellings
# (2130706433, 0x7f.1, 0177.0.0.1, 127.1); only the dotted-quad one is unambiguous.
_NUMERIC_LABEL_RE = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class Target:
    """A vetted URL: its parts, and the addresses a request to it may connect to."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]
    is_literal: bool

    @property
    def host_header(self) -> str:
        return _netloc(self.scheme, self.host, self.port)

    def pinned_url(self, address: IPAddress) -> str:
        """The URL with ``address`` in place of the host (send ``host_header`` alongside)."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def validate_target(url: str, *, allow_internal: bool) -> str:
    """The normalised URL, or ``webhook_url_invalid`` saying what is wrong with it."""
    return vet_target(url, allow_internal=allow_internal).url


def vet_target(url: str, *, allow_internal: bool) -> Target:
    """Parse ``url``, resolve its host and check every address (see the module docstring)."""
    scheme, host, port, path = _parse(url)
    literal = _ip_literal(host)
    addresses = (literal,) if literal is not None else _resolve(host, port)
    if not allow_internal:
        for address in addresses:
            if not is_public(address):
                shown = "" if literal is not None else f" resolves to {address}, which"
                raise _invalid(
                    f"{host}{shown} is not a public address; webhook targets must be reachable "
                    "on the internet (the operator can allow internal ones with "
                    "webhook_allow_internal)."
                )
    return Target(
        url=f"{scheme}://{_netloc(scheme, host, port)}{path}",
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        addresses=addresses,
        is_literal=literal is not None,
    )


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is globally routable, judging IPv4 carried in IPv6 by the IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or _nat64(address)
        if embedded is not None:
            return is_public(embedded)
        # 6to4 and Teredo tunnel to an IPv4 address of the sender's choosing; site-local is
        # deprecated but still private. None of them is a sane webhook target.
        if address.sixtofour or address.teredo or address.is_site_local:
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
    )


def _parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a well-formed http(s) URL."""
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    # Printable ASCII only: no whitespace or control characters for parsers to disagree on.
    if not url.isascii() or not url.isprintable() or " " in url or "\\" in url:
        raise _invalid(
            "The URL may only hold printable ASCII without spaces or backslashes "
            "(percent-encode the rest; write international domain names as xn--)."
        )
    if "#" in url:
        raise _invalid("The URL may not have a #fragment.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _invalid(f"The URL cannot be parsed: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _invalid("Only http:// and https:// URLs can receive webhooks.")
    if "@" in parts.netloc:
        raise _invalid("The URL may not carry a user name or password.")
    host = (parts.hostname or "").lower()
    if not host:
        raise _invalid("The URL has no host.")
    if port == 0:
        raise _invalid("Port 0 cannot be connected to.")
    _check_host(host)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or DEFAULT_PORTS[scheme], path


def _check_host(host: str) -> None:
    if ":" in host:
        if "%" in host:
            raise _invalid("IPv6 zone identifiers are not allowed.")
        return  # urlsplit has checked the brackets; _ip_literal parses it.
    labels = host.removesuffix(".").split(".")
    if _NUMERIC_LABEL_RE.match(labels[-1]):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _invalid(
                f"{host!r} is an unusual spelling of an IPv4 address; write it as four "
                "decimal numbers (e.g. 93.184.215.14)."
            ) from None
        return
    if len(host) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        raise _invalid(f"{host!r} is not a valid host name.")


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        if ":" in host:
            raise _invalid(f"{host!r} is not a valid IPv6 address.") from None
        return None


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address ``host`` resolves to, in the resolver's order, without duplicates."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _invalid(f"The host {host!r} cannot be resolved ({exc}).") from None
    found: dict[IPAddress, None] = {}
    for family, _type, _proto, _canon, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            # An IPv6 link-local answer may carry a %zone; the address itself is what counts.
            found[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
    if not found:
        raise _invalid(f"The host {host!r} has no IPv4 or IPv6 address.")
    return tuple(found)


def _netloc(scheme: str, host: str, port: int) -> str:
    bracketed = f"[{host}]" if ":" in host else host
    return bracketed if port == DEFAULT_PORTS[scheme] else f"{bracketed}:{port}"


def _nat64(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _invalid(message: str) -> FilegateError:
    return FilegateError(ErrorCode.WEBHOOK_URL_INVALID, message)
