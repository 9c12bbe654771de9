"""URLs users give the server to call (webhooks, later media): checked before every request.

A URL must be http(s), name a host and carry no credentials. Its host must resolve only
to public addresses, so nobody can point the server at its own loopback, the private
network it sits in, or a cloud metadata service (169.254.169.254), unless the operator
sets ALLOW_PRIVATE_URLS for self-hosted networks. The check runs when a URL is saved and
again before each request, and the request then goes to the very address that was
checked: a DNS answer that changes in between (DNS rebinding) changes nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from flask import current_app

from services.errors import ValidationError

URL_MAX = 2048
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
NAT64 = ipaddress.ip_network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class UrlTarget:
    """How to request a checked URL: the URL to open, and the headers and options that go with it.

    For a URL checked against private addresses, `url` names the checked address instead of
    the host; `headers` (Host) and `extensions` (TLS server name) keep the host for the receiver.
    """

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def private_urls_allowed() -> bool:
    return bool(current_app.config["ALLOW_PRIVATE_URLS"])


def private_networks_allowed() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Private networks the operator lets the server call (ALLOWED_PRIVATE_NETWORKS, CIDRs),
    for a receiver on the LAN without opening every private address."""
    return [ipaddress.ip_network(cidr, strict=False) for cidr in current_app.config["ALLOWED_PRIVATE_NETWORKS"]]


def address_is_public(address: Address) -> bool:
    """Whether an address is globally routable: not private, loopback, link-local, reserved,
    multicast or unspecified, also when an IPv6 address carries an IPv4 one inside."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_is_public(embedded)
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def _invalid(message: str, field_name: str) -> ValidationError:
    return ValidationError(message, code="INVALID_URL", details={"field": field_name})


def url_parse(url: object, *, field_name: str = "url") -> SplitResult:
    """A URL's parts, if it is one the server may call at all (address checks aside)."""
    if not isinstance(url, str) or not url.strip():
        raise _invalid(f"'{field_name}' is required: an http:// or https:// URL", field_name)
    url = url.strip()
    if len(url) > URL_MAX:
        raise _invalid(f"'{field_name}' is longer than {URL_MAX} characters", field_name)
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise _invalid(f"'{field_name}' must not contain spaces or control characters", field_name)
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise _invalid(f"'{field_name}' must be an http:// or https:// URL with a host", field_name)
    if parts.username is not None or parts.password is not None:
        raise _invalid(f"'{field_name}' must not contain a user name or password", field_name)
    try:
        _ = parts.port, _ascii_host(parts.hostname)
    except (ValueError, UnicodeError):
        raise _invalid(f"'{field_name}' has an invalid host or port", field_name) from None
    return parts


def _ascii_host(hostname: str) -> str:
    """The host as it goes on the wire (an internationalised name in its xn-- form)."""
    return hostname if hostname.isascii() else hostname.encode("idna").decode("ascii")


def _host_addresses(host: str, port: int, field_name: str) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ValidationError(
            f"The host {host} of '{field_name}' could not be resolved",
            code="URL_NOT_RESOLVABLE",
            details={"field": field_name},
        ) from None
    # An IPv6 link-local answer may carry a zone ("fe80::1%eth0").
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


def url_target(url: object, *, field_name: str = "url") -> UrlTarget:
    """Check a URL the server is about to call (or to keep for calling later); 400 if it may not."""
    parts = url_parse(url, field_name=field_name)
    if private_urls_allowed():
        return UrlTarget(url=parts.geturl())
    port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
    addresses = _host_addresses(parts.hostname, port, field_name)
    allowed = private_networks_allowed()
    refused = [
        address
        for address in addresses
        if not address_is_public(address) and not any(address in network for network in allowed)
    ]
    if refused:
        raise ValidationError(
            f"'{field_name}' points at {refused[0]}, a private, loopback, link-local or reserved address; "
            "the server only calls public addresses (an operator can set ALLOW_PRIVATE_URLS=true)",
            error="URL not allowed",
            code="URL_NOT_ALLOWED",
            details={"field": field_name},
        )
    address = addresses[0]
    shown = f"[{address}]" if address.version == 6 else str(address)
    pinned = parts._replace(netloc=f"{shown}:{parts.port}" if parts.port else shown)
    # The Host header, and the name TLS checks the certificate against, stay the URL's own.
    host = _ascii_host(parts.hostname)
    host_header = f"[{host}]" if ":" in host else host
    if parts.port:
        host_header += f":{parts.port}"
    extensions = {"sni_hostname": host} if parts.scheme.lower() == "https" else {}
    return UrlTarget(url=pinned.geturl(), headers={"Host": host_header}, extensions=extensions)


def url_check(url: object, *, field_name: str = "url") -> str:
    """The URL to store, after the same checks as before a request."""
    url_target(url, field_name=field_name)
    return url.strip()
