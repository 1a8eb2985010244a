"""Where a webhook may go (``jobkit.webhooks``): the classes of address refused, IPv4
addresses inside IPv6 ones included, the URL rules CreateJob checks without resolving, and
the check of every address a name resolves to (with a resolver passed in)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

import pytest

from jobkit import webhooks
from jobkit.errors import InvalidArgument
from jobkit.lifecycle import EventType
from jobkit.webhooks import IPAddress, Target, parse_allow_hosts, parse_url, refusal


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # shared address space (carrier-grade NAT)
        ("192.0.2.7", "private"),  # documentation
        ("198.18.0.1", "private"),  # benchmarking
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("2001:db8::1", "private"),  # documentation
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        # Cloud metadata, link-local, private and public ones.
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("192.0.0.192", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        # IPv4 inside IPv6: mapped, compatible, 6to4, NAT64.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::127.0.0.1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("2002:a9fe:a9fe::1", "cloud metadata"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),
        ("64:ff9b::a00:1", "private"),
        ("64:ff9b:1::a9fe:a9fe", "reserved"),  # local-use NAT64: its layout is the operator's
        # A mapped public address is still no address to connect to as IPv6.
        ("::ffff:8.8.8.8", "reserved"),
    ],
)
def test_an_address_webhooks_may_not_reach_is_refused_by_its_class(
    address: str, reason: str
) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


def test_teredo_is_refused_whatever_it_carries() -> None:
    # Server 65.54.227.120, client 192.0.2.45 (obfuscated in the last 32 bits).
    assert refusal(ipaddress.ip_address("2001:0:4136:e378:8000:63bf:3fff:fdd2")) is not None


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "64:ff9b::808:808"]
)
def test_a_global_unicast_address_may_be_reached(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def _refused(raw: str, allow: str = "") -> str:
    with pytest.raises(InvalidArgument) as caught:
        parse_url(raw, parse_allow_hosts(allow))
    ((violation),) = caught.value.violations
    assert violation.field == "webhook_url"
    assert str(caught.value).startswith("webhook_url ")
    return violation.description


def test_an_https_url_passes_as_written() -> None:
    target = parse_url("https://Hooks.Example.com/in/a%20b?sig=s3cr3t#frag", frozenset())
    assert target == Target(
        url="https://Hooks.Example.com/in/a%20b?sig=s3cr3t#frag",
        scheme="https",
        host="hooks.example.com",
        port=443,
        path="/in/a%20b?sig=s3cr3t",
        allowed=False,
        literal=None,
    )
    assert target.authority == "hooks.example.com"
    assert parse_url("https://h.example:8443", frozenset()).path == "/"
    assert parse_url("https://h.example:8443", frozenset()).authority == "h.example:8443"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("http://hooks.example.com/", "must be an https URL (http only for allowed hosts)"),
        ("ftp://hooks.example.com/", "must be an https URL"),
        ("hooks.example.com/in", "must be an https URL"),
        ("https://user:pw@hooks.example.com/", "must not carry user info"),
        ("https://allowed.test@evil.test/", "must not carry user info"),
        ("https:///path", "must name a host"),
        ("https://hooks.example.com:0/", "must not name port 0"),
        ("https://hooks.example.com:99999/", "is not a valid URL"),
        ("https://hooks.example.com/a b", "RFC 3986"),
        ("https://hooks.example.com\\@evil.test/", "RFC 3986"),
        ("https://bücher.example/", "RFC 3986"),
        ("https://[fe80::1%25eth0]/", "must not name an IPv6 zone"),
        ("https://127.0.0.1/", "is a loopback address, which webhooks may not reach"),
        ("http://169.254.169.254/latest/meta-data/", "is a cloud metadata address"),
        ("http://10.0.0.1/", "is a private address"),
        ("https://[::ffff:169.254.169.254]/", "is a cloud metadata address"),
    ],
)
def test_a_url_webhooks_may_not_use_is_refused_naming_the_field(raw: str, why: str) -> None:
    assert why in _refused(raw)


def test_the_length_is_bounded() -> None:
    base = "https://hooks.example.com/"
    fits = base + "a" * (webhooks.MAX_URL_LENGTH - len(base))
    assert parse_url(fits, frozenset()).url == fits
    assert "at most 2048 characters" in _refused(fits + "a")


def test_an_allowed_host_is_exempt_only_as_written() -> None:
    allow = " 127.0.0.1 , Hooks.Internal ,[::1]"
    assert parse_allow_hosts(allow) == frozenset({"127.0.0.1", "hooks.internal", "::1"})
    allowed = parse_url("http://127.0.0.1:8080/in", parse_allow_hosts(allow))
    assert (allowed.allowed, allowed.literal) == (True, ipaddress.ip_address("127.0.0.1"))
    assert parse_url("http://HOOKS.internal/", parse_allow_hosts(allow)).allowed
    assert parse_url("http://[::1]:9/", parse_allow_hosts(allow)).allowed
    # Another spelling of the same address, or a name beside it, is not listed.
    assert "loopback" in _refused("http://127.0.0.2/", allow)
    assert "loopback" in _refused("https://[::ffff:127.0.0.1]/", allow)
    assert "https" in _refused("http://127.0.0.1.nip.io/", allow)
    assert "https" in _refused("http://localhost/", allow)


def _resolver(*answers: str, error: BaseException | None = None) -> webhooks.Resolve:
    async def resolve(host: str, port: int) -> Sequence[IPAddress]:
        resolve.calls.append((host, port))  # type: ignore[attr-defined]
        if error is not None:
            raise error
        return [ipaddress.ip_address(a) for a in answers]

    resolve.calls = []  # type: ignore[attr-defined]
    return resolve


async def test_every_address_a_name_resolves_to_is_checked() -> None:
    target = parse_url("https://hooks.example.com:8443/in", frozenset())
    public = _resolver("93.184.216.34", "2606:4700:4700::1111")
    assert [str(a) for a in await webhooks.addresses(target, public, 1.0)] == [
        "93.184.216.34",
        "2606:4700:4700::1111",
    ]
    assert public.calls == [("hooks.example.com", 8443)]  # type: ignore[attr-defined]
    # One internal address among public ones refuses the name.
    with pytest.raises(webhooks.Refused) as caught:
        await webhooks.addresses(target, _resolver("93.184.216.34", "10.0.0.5"), 1.0)
    assert caught.value.reason == "private"
    with pytest.raises(webhooks.Refused, match="cloud metadata"):
        await webhooks.addresses(target, _resolver("::ffff:169.254.169.254"), 1.0)


async def test_an_allowed_name_may_resolve_anywhere() -> None:
    target = parse_url("http://hooks.internal/", parse_allow_hosts("hooks.internal"))
    found = await webhooks.addresses(target, _resolver("10.1.2.3"), 1.0)
    assert found == [ipaddress.ip_address("10.1.2.3")]


async def test_an_ip_literal_is_never_resolved() -> None:
    target = parse_url("https://93.184.216.34/", frozenset())
    never = _resolver(error=AssertionError("resolved a literal"))
    assert await webhooks.addresses(target, never, 1.0) == [ipaddress.ip_address("93.184.216.34")]


async def test_a_name_that_does_not_resolve_is_told_from_dns_failing() -> None:
    target = parse_url("https://hooks.example.com/", frozenset())
    for error, permanent in (
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), True),
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure"), False),
    ):
        with pytest.raises(webhooks.Unresolvable) as caught:
            await webhooks.addresses(target, _resolver(error=error), 1.0)
        assert caught.value.permanent is permanent
    with pytest.raises(webhooks.Unresolvable) as caught:
        await webhooks.addresses(target, _resolver(), 1.0)
    assert caught.value.permanent

    async def slow(host: str, port: int) -> Sequence[IPAddress]:
        await asyncio.sleep(5)
        return []

    with pytest.raises(webhooks.Unresolvable) as caught:
        await webhooks.addresses(target, slow, 0.05)
    assert not caught.value.permanent


async def test_the_system_resolver_answers_localhost_with_loopback() -> None:
    found = await webhooks.system_resolve("localhost", 443)
    assert found
    assert all(refusal(a) == "loopback" for a in found)
    with pytest.raises(webhooks.Refused, match="loopback"):
        await webhooks.addresses(
            parse_url("https://localhost/", frozenset()), webhooks.system_resolve, 5.0
        )


def test_the_events_sent_are_one_constant_of_every_terminal_event_and_input_required() -> None:
    terminal = {t for t in EventType if t.terminal}
    assert set(webhooks.EVENT_TYPES) == terminal | {EventType.INPUT_REQUIRED}
    assert dict(webhooks.EVENT_TYPES) == {
        EventType.INPUT_REQUIRED: "job.input_required",
        EventType.SUCCEEDED: "job.succeeded",
        EventType.FAILED: "job.failed",
        EventType.CANCELLED: "job.cancelled",
    }
