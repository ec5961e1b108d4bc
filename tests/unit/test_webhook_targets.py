"""The SSRF guard on webhook URLs: what may filegate be told to POST to?"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import pytest

from filegate.errors import ErrorCode, FilegateError
from filegate.services import targets
from filegate.services.targets import MAX_URL_LENGTH, is_public, validate_target, vet_target

PUBLIC = "http://93.184.215.14/hook"


def refused(url: str, allow_internal: bool = False) -> str:
    with pytest.raises(FilegateError) as caught:
        validate_target(url, allow_internal=allow_internal)
    assert caught.value.code is ErrorCode.WEBHOOK_URL_INVALID
    return caught.value.message


def fake_resolver(
    answers: dict[str, list[str]],
) -> Callable[..., list[tuple[object, ...]]]:
    """A getaddrinfo that knows only ``answers`` (name -> addresses)."""

    def getaddrinfo(
        host: str, port: int, *_args: object, **_kw: object
    ) -> list[tuple[object, ...]]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in answers[host]
        ]

    return getaddrinfo


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str]]], None]:
    def install(answers: dict[str, list[str]]) -> None:
        monkeypatch.setattr(targets.socket, "getaddrinfo", fake_resolver(answers))

    return install


@pytest.mark.parametrize(
    "url",
    [
        # loopback, in every spelling a URL parser or inet_aton accepts
        "http://127.0.0.1/",
        "http://127.0.0.2:8080/hook",
        "http://localhost/",
        "http://LOCALHOST:9000/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://127.0.0.1./",
        "http://%31%32%37.0.0.1/",
        "http://[::1]/",
        "http://[0:0:0:0:0:0:0:1]/",
        # IPv4 smuggled inside IPv6: mapped, compatible, NAT64, 6to4, Teredo
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::10.0.0.1]/",
        "http://[2002:7f00:1::]/",
        "http://[2002:5db8:d70e::]/",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        # cloud metadata and other link-local
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fe80::1%25eth0]/",
        # private, shared (CGNAT), site-local and unique-local
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[fec0::1]/",
        # unspecified, broadcast, multicast, reserved, documentation, benchmarking
        "http://0.0.0.0/",
        "http://0/",
        "http://[::]/",
        "http://255.255.255.255/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "http://240.0.0.1/",
        "http://192.0.2.10/",
        "http://198.18.0.1/",
        "http://[2001:db8::1]/",
    ],
)
def test_internal_targets_are_refused(url: str) -> None:
    refused(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://93.184.215.14/", "Only http:// and https://"),
        ("file:///etc/passwd", "Only http:// and https://"),
        ("gopher://93.184.215.14:70/", "Only http:// and https://"),
        ("javascript:alert(1)", "Only http:// and https://"),
        ("//93.184.215.14/hook", "Only http:// and https://"),
        ("http://user:pass@93.184.215.14/", "user name or password"),
        ("http://93.184.215.14@127.0.0.1/", "user name or password"),
        ("http://@93.184.215.14/", "user name or password"),
        ("http:///hook", "no host"),
        ("http://:80/hook", "no host"),
        ("http://93.184.215.14/hook#part", "#fragment"),
        ("http://93.184.215.14:0/", "Port 0"),
        ("http://93.184.215.14:65536/", "cannot be parsed"),
        ("http://93.184.215.14:http/", "cannot be parsed"),
        ("http://[::1/", "cannot be parsed"),
        ("http://93.184.215.14\\@127.0.0.1/", "printable ASCII"),
        ("http://93.184.215.14/a b", "printable ASCII"),
        ("http://93.184.215.14/\r\nX-Injected: 1", "printable ASCII"),
        ("http://exämple.com/", "xn--"),
        ("http://bad_-.example/", "not a valid host name"),
        ("http://a..example/", "not a valid host name"),
        ("http://" + "a" * 64 + ".example/", "not a valid host name"),
    ],
)
def test_malformed_urls_are_refused(url: str, reason: str) -> None:
    assert reason in refused(url, allow_internal=True)


def test_the_length_is_capped() -> None:
    base = "http://93.184.215.14/"
    assert validate_target(base + "a" * (MAX_URL_LENGTH - len(base)), allow_internal=False)
    assert "longer than 2048" in refused(base + "a" * (MAX_URL_LENGTH - len(base) + 1))


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        (PUBLIC, PUBLIC),
        ("HTTP://93.184.215.14", "http://93.184.215.14/"),
        ("https://93.184.215.14:443/a?b=1&c", "https://93.184.215.14/a?b=1&c"),
        ("http://93.184.215.14:8080/x", "http://93.184.215.14:8080/x"),
        ("http://[2606:4700:4700::1111]:8443/", "http://[2606:4700:4700::1111]:8443/"),
        # NAT64 carrying a public IPv4 is as public as that address
        ("http://[64:ff9b::5db8:d70e]/", "http://[64:ff9b::5db8:d70e]/"),
    ],
)
def test_public_addresses_pass_normalised(url: str, normalised: str) -> None:
    assert validate_target(url, allow_internal=False) == normalised


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://localhost/", "http://[::1]/", "http://10.1.2.3/"]
)
def test_the_operator_can_allow_internal_targets(url: str) -> None:
    assert validate_target(url, allow_internal=True).startswith("http://")


def test_ambiguous_ipv4_spellings_are_refused_even_when_internal_is_allowed() -> None:
    assert "four decimal numbers" in refused("http://2130706433/", allow_internal=True)


def test_a_name_is_refused_if_any_of_its_addresses_is_internal(dns: Callable[..., None]) -> None:
    dns({"mixed.example": ["93.184.215.14", "10.0.0.7"], "public.example": ["93.184.215.14"]})

    message = refused("https://mixed.example/hook")

    assert "mixed.example resolves to 10.0.0.7" in message
    assert validate_target("https://Public.Example/hook", allow_internal=False) == (
        "https://public.example/hook"
    )


def test_a_name_that_does_not_resolve_is_refused(dns: Callable[..., None]) -> None:
    dns({})
    assert "cannot be resolved" in refused("https://nowhere.example/", allow_internal=True)


def test_a_vetted_target_pins_its_addresses(dns: Callable[..., None]) -> None:
    dns({"hooks.example": ["2606:4700::1111", "93.184.215.14", "93.184.215.14"]})

    target = vet_target("https://hooks.example:8443/in?x=1", allow_internal=False)

    assert target.addresses == (
        ipaddress.ip_address("2606:4700::1111"),
        ipaddress.ip_address("93.184.215.14"),
    )
    assert target.host_header == "hooks.example:8443"
    assert target.pinned_url(target.addresses[0]) == "https://[2606:4700::1111]:8443/in?x=1"
    assert not target.is_literal


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("::ffff:93.184.215.14", True),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a00:1", False),
        ("2002:5db8:d70e::1", False),
        ("100.127.255.255", False),
        ("100.128.0.1", True),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
