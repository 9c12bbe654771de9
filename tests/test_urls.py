"""URLs the server calls: only public addresses, and the request goes to the address checked."""

import ipaddress
import socket

import pytest

from services.errors import ValidationError
from services.platform.urls import address_is_public, url_target


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"],
)
def test_public_addresses_are_allowed(address):
    assert address_is_public(ipaddress.ip_address(address)) is True


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
        "2001:db8::1",
    ],
)
def test_private_loopback_link_local_and_reserved_addresses_are_refused(address):
    assert address_is_public(ipaddress.ip_address(address)) is False


def _resolving_to(monkeypatch, *addresses: str) -> list[str]:
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_a_checked_url_is_requested_at_the_checked_address_under_its_own_name(app, monkeypatch):
    asked = _resolving_to(monkeypatch, "93.184.216.34")
    with app.app_context():
        target = url_target("https://hooks.example.com:8443/wagate?x=1")
    assert asked == ["hooks.example.com"]
    assert target.url == "https://93.184.216.34:8443/wagate?x=1"
    assert target.headers == {"Host": "hooks.example.com:8443"}
    assert target.extensions == {"sni_hostname": "hooks.example.com"}


def test_an_ipv6_answer_is_bracketed(app, monkeypatch):
    _resolving_to(monkeypatch, "2606:4700:4700::1111")
    with app.app_context():
        target = url_target("http://hooks.example.com/wagate")
    assert (target.url, target.headers, target.extensions) == (
        "http://[2606:4700:4700::1111]/wagate",
        {"Host": "hooks.example.com"},
        {},
    )


def test_a_name_with_any_private_answer_is_refused(app, monkeypatch):
    _resolving_to(monkeypatch, "93.184.216.34", "10.0.0.7")
    with app.app_context(), pytest.raises(ValidationError) as refused:
        url_target("https://hooks.example.com/wagate")
    assert refused.value.code == "URL_NOT_ALLOWED" and "10.0.0.7" in refused.value.message


def test_a_name_that_does_not_resolve_is_refused(app, monkeypatch):
    def getaddrinfo(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with app.app_context(), pytest.raises(ValidationError) as refused:
        url_target("https://nowhere.invalid/wagate")
    assert refused.value.code == "URL_NOT_RESOLVABLE"


@pytest.mark.parametrize("config_overrides", [{"ALLOW_PRIVATE_URLS": True}])
def test_the_operator_can_allow_private_addresses(app, monkeypatch):
    asked = _resolving_to(monkeypatch, "10.0.0.7")
    with app.app_context():
        target = url_target("http://receiver.internal:8080/wagate")
    assert (target.url, target.headers, asked) == ("http://receiver.internal:8080/wagate", {}, [])
