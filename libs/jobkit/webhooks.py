"""Signed completion webhooks: which events are sent, under which id, and where a webhook
may go.

A job created with a ``webhook_url`` has each of its events of a type in ``EVENT_TYPES``
POSTed there. The statement that commits such an event also writes its delivery: a row in
``webhook_deliveries`` and an outbox message to JetStream's ``JOB_WEBHOOKS``
(``jobkit.store``), so a delivery is enqueued exactly when its event is committed. The
notifier makes the tries (``services/notifier/deliveries.py``), each signed per the
Standard Webhooks spec with the same ``webhook-id``.

Where a webhook may go (server-side request forgery): https only, and never to a host
that is, or resolves to, an address of a class in ``refusal`` (loopback, private,
link-local, multicast, unspecified, reserved, cloud metadata), IPv4 addresses inside IPv6
ones included. A host that ``WEBHOOK_ALLOW_HOSTS`` lists exactly as the URL writes it
(a name or an IP literal) is exempt from both. CreateJob checks the URL (``parse_url``,
pure, then ``addresses``, which resolves it); every try checks it again, resolving once and
connecting to the address it checked, so DNS cannot answer differently in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from urllib.parse import urlsplit

from jobkit.config import env_str
from jobkit.errors import InvalidArgument
from jobkit.lifecycle import EventType
from jobkit.model import Row

#: The events a job's webhook gets, and the payload ``type`` of each: every terminal
#: event, and a step asking for input (a serverless backend hears it needs a person).
EVENT_TYPES: Mapping[EventType, str] = MappingProxyType(
    {
        EventType.INPUT_REQUIRED: "job.input_required",
        EventType.SUCCEEDED: "job.succeeded",
        EventType.FAILED: "job.failed",
        EventType.CANCELLED: "job.cancelled",
    }
)

FIELD = "webhook_url"
MAX_URL_LENGTH = 2048
#: RFC 3986's characters: unreserved, reserved, and ``%`` of percent-encoding.
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Platform endpoints a webhook must never reach, whatever their class: instance metadata
#: and the like. Most are link-local or private anyway; Azure's WireServer is public.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle (IMDS)
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS Pod Identity
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure WireServer (a public address)
    )
)
#: NAT64's well-known prefix (RFC 6052): an address there reaches the IPv4 address in its
#: last 32 bits through the network's translator. (The local-use 64:ff9b:1::/48 of RFC 8215
#: embeds it by its operator's choice of length: refused whole, as Python's reserved ::/8.)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: IPv4-compatible IPv6 addresses (deprecated, RFC 4291): ``::a.b.c.d``.
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def webhook_id(job_id: uuid.UUID, sequence: int) -> str:
    """A delivery's ``webhook-id``: the same on every try, one per job and event."""
    return f"{job_id}:{sequence}"


class DeliveryState(StrEnum):
    """Where a delivery stands; ``DEAD`` is a dead letter (its last try failed)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A row of ``webhook_deliveries``: one event of a job for its webhook, and its tries."""

    webhook_id: str
    job_id: uuid.UUID
    sequence: int
    #: The payload's type (a value of ``EVENT_TYPES``).
    type: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    #: The last try's HTTP status, or the class of error that left it without one.
    last_status: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Row) -> Delivery:
        """A row of ``webhook_deliveries``: its columns are the fields."""
        values = {f.name: row[f.name] for f in fields(cls)}
        return cls(**{**values, "state": DeliveryState(values["state"])})


def parse_allow_hosts(raw: str) -> frozenset[str]:
    """``WEBHOOK_ALLOW_HOSTS``: hosts, comma-separated, as URLs write them (a name, an IPv4
    literal, an IPv6 literal with or without its brackets); names compare without case."""
    return frozenset(_normal_host(h) for h in raw.split(",") if h.strip())


def allow_hosts_from_env(env: Mapping[str, str]) -> frozenset[str]:
    return parse_allow_hosts(env_str(env, "WEBHOOK_ALLOW_HOSTS", ""))


def _normal_host(host: str) -> str:
    host = host.strip().lower()
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook URL that passed ``parse_url``."""

    url: str
    scheme: str
    #: As the URL writes it, lowercased, without an IPv6 literal's brackets.
    host: str
    port: int
    #: The path and the query, as written (the fragment is not sent).
    path: str
    #: ``WEBHOOK_ALLOW_HOSTS`` lists the host: no address is refused, http is allowed.
    allowed: bool
    #: The host, when it is an IP literal: nothing to resolve.
    literal: IPAddress | None

    @property
    def authority(self) -> str:
        """The ``Host`` header: the host as written, with the port unless the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(raw: str, allow_hosts: frozenset[str]) -> Target:
    """Check a webhook URL without resolving it (pure): its length, https (http only for an
    allowed host), no user info, a host, and for an IP literal its class. Raises
    ``InvalidArgument`` naming ``webhook_url``. A host name still has to pass
    ``addresses``."""
    if len(raw) > MAX_URL_LENGTH:
        raise InvalidArgument.on(FIELD, f"must be at most {MAX_URL_LENGTH} characters")
    if not _URL_CHARACTERS.fullmatch(raw):
        # Only what RFC 3986 allows: no spaces, backslashes or non-ASCII letters, which
        # parsers read differently (IDNA names go in punycode, the rest percent-encoded).
        raise InvalidArgument.on(FIELD, "must be a URL of RFC 3986's characters only")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise InvalidArgument.on(FIELD, "is not a valid URL") from None
    if port == 0:
        raise InvalidArgument.on(FIELD, "must not name port 0")
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise InvalidArgument.on(FIELD, "must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument.on(FIELD, "must not carry user info (put a secret in the path)")
    host = _normal_host(parts.hostname or "")
    if not host:
        raise InvalidArgument.on(FIELD, "must name a host")
    if "%" in host:
        raise InvalidArgument.on(FIELD, "must not name an IPv6 zone")
    allowed = host in allow_hosts
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if not allowed:
        if literal is not None and (reason := refusal(literal)) is not None:
            raise InvalidArgument.on(FIELD, f"is a {reason} address, which webhooks may not reach")
        if scheme != "https":
            raise InvalidArgument.on(FIELD, "must be an https URL (http only for allowed hosts)")
    default = 443 if scheme == "https" else 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(raw, scheme, host, port or default, path, allowed, literal)


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not go to ``address``: the class it is of (for an IPv6 address
    carrying an IPv4 one — mapped, compatible, 6to4, Teredo, NAT64 — the IPv4 one's
    too); ``None`` when it may (a global unicast address)."""
    for ip in _identities(address):
        if ip in METADATA_ADDRESSES:
            return "cloud metadata"
        if ip.is_unspecified:
            return "unspecified"
        if ip.is_loopback:
            return "loopback"
        if ip.is_link_local:
            return "link-local"
        if ip.is_multicast:
            return "multicast"
        if ip.is_reserved:
            return "reserved"
        if ip.is_private or not ip.is_global:
            return "private"
    return None


def _identities(address: IPAddress) -> list[IPAddress]:
    """The IPv4 addresses an IPv6 address leads to, then the address itself: the inner
    address names the class (``::ffff:127.0.0.1`` is loopback before it is reserved)."""
    found: list[IPAddress] = []
    if isinstance(address, ipaddress.IPv6Address):
        bare = ipaddress.IPv6Address(int(address))  # without a zone
        last32 = ipaddress.IPv4Address(int(bare) & 0xFFFFFFFF)
        if bare.ipv4_mapped is not None:
            found.append(bare.ipv4_mapped)
        if bare.sixtofour is not None:
            found.append(bare.sixtofour)
        if bare.teredo is not None:
            found.extend(bare.teredo)
        if bare in _IPV4_COMPATIBLE and int(bare) > 1:
            found.append(last32)
        if bare in _NAT64:
            # Judged by the IPv4 address alone: Python counts the prefix as reserved, but
            # on an IPv6-only network (DNS64) every public host has such an address.
            return [last32]
    found.append(address)
    return found


class Refused(Exception):
    """A host resolved to an address webhooks may not reach; ``reason`` names its class."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unresolvable(Exception):
    """A host did not resolve: ``permanent`` when it has no address (as opposed to DNS
    failing or answering too late)."""

    def __init__(self, permanent: bool) -> None:
        super().__init__("does not resolve" if permanent else "could not be resolved")
        self.permanent = permanent


#: Resolves a host name and port to its addresses.
Resolve = Callable[[str, int], Awaitable[Sequence[IPAddress]]]

#: getaddrinfo's answers for a name that has no address.
_NO_ADDRESS = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


async def system_resolve(host: str, port: int) -> list[IPAddress]:
    """The host's addresses from the system resolver, in its order, once each."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


async def addresses(target: Target, resolve: Resolve, timeout_s: float) -> list[IPAddress]:
    """Where ``target`` may be reached: its IP literal, or its host's addresses. Unless
    the host is allowed, every one of them must pass ``refusal`` (one bad address refuses
    the host: a name cannot smuggle an internal address in beside public ones).

    Raises ``Refused``, or ``Unresolvable`` when the name has no address or DNS fails or
    takes longer than ``timeout_s``."""
    if target.literal is not None:
        found: Sequence[IPAddress] = [target.literal]
    else:
        try:
            async with asyncio.timeout(timeout_s):
                found = await resolve(target.host, target.port)
        except TimeoutError:
            raise Unresolvable(permanent=False) from None
        except socket.gaierror as error:
            raise Unresolvable(permanent=error.errno in _NO_ADDRESS) from None
        except (OSError, UnicodeError, ValueError):
            raise Unresolvable(permanent=True) from None
        if not found:
            raise Unresolvable(permanent=True)
    if not target.allowed:
        for address in found:
            if (reason := refusal(address)) is not None:
                raise Refused(reason)
    return list(found)
