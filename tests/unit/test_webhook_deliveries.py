"""What the notifier sends and how: the payload, the Standard Webhooks signature (checked
with the ``standardwebhooks`` package's own ``Webhook.verify``), a rotation's two
signatures, the back-off schedule, and one try over HTTP against a mock transport: the
address it connects to, the name TLS and ``Host`` carry, no redirects, the refusals."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from google.protobuf import json_format
from standardwebhooks import Webhook, WebhookVerificationError

from devstack.stack import new_webhook_secret
from jobkit.convert import event_to_proto, webhook_body
from jobkit.errors import ConfigError
from jobkit.lifecycle import EventType, JobStatus
from jobkit.model import EventRecord, NewEvent
from jobkit.webhooks import DeliveryState, IPAddress, parse_allow_hosts
from services.notifier.sender import Sender
from services.notifier.webhooks import RetryPolicy, Signer, TryResult, parse_secrets

OCCURRED = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def _event(kind: EventType = EventType.SUCCEEDED, sequence: int = 9) -> EventRecord:
    status = {
        EventType.SUCCEEDED: JobStatus.SUCCEEDED,
        EventType.FAILED: JobStatus.FAILED,
        EventType.CANCELLED: JobStatus.CANCELLED,
    }[kind]
    return EventRecord(
        uuid.UUID("6f1c0000-0000-4000-8000-000000000001"),
        sequence,
        NewEvent(kind, status, 100, "Preview ready!", message="done"),
        OCCURRED,
    )


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (EventType.SUCCEEDED, "job.succeeded"),
        (EventType.FAILED, "job.failed"),
        (EventType.CANCELLED, "job.cancelled"),
    ],
)
def test_the_payload_is_type_timestamp_and_the_event_as_the_gateway_sends_it(
    kind: EventType, name: str
) -> None:
    record = _event(kind)
    document = json.loads(webhook_body(record))
    assert list(document) == ["type", "timestamp", "data"]
    assert document["type"] == name
    assert document["timestamp"] == "2026-03-04T05:06:07.890123Z"
    assert datetime.fromisoformat(document["timestamp"]) == OCCURRED
    # services/gateway's to_json of the JobEvent WatchJob streams: every field printed.
    assert document["data"] == json_format.MessageToDict(
        event_to_proto(record), always_print_fields_with_no_presence=True
    )
    assert document["data"]["sequence"] == "9"
    assert document["data"]["jobId"] == "6f1c0000-0000-4000-8000-000000000001"
    assert document["data"]["partialOutput"] == ""
    assert webhook_body(record) == webhook_body(record)  # the same bytes on every try


def test_only_the_sent_event_types_have_a_payload() -> None:
    progress = EventRecord(
        uuid.uuid4(), 3, NewEvent(EventType.PROGRESS, JobStatus.RUNNING, 5), OCCURRED
    )
    with pytest.raises(KeyError):
        webhook_body(progress)


def test_the_signature_verifies_with_the_spec_s_own_package() -> None:
    secret = new_webhook_secret()
    body = webhook_body(_event())
    at = datetime.now(UTC)
    headers = Signer([secret]).headers("6f1c:9", at, body)
    assert headers["webhook-id"] == "6f1c:9"
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    # Anything changed, and it no longer verifies.
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"done", b"dome"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "6f1c:10"})
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(body, headers)
    # A try made long ago is refused by the receiver's clock check: the timestamp is the try's.
    stale = Signer([secret]).headers("6f1c:9", at - timedelta(minutes=10), body)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(body, stale)


def test_a_rotation_puts_two_signatures_each_verifying_alone() -> None:
    new, old = new_webhook_secret(), new_webhook_secret()
    body = webhook_body(_event())
    at = datetime.now(UTC)
    headers = Signer(parse_secrets(f"{new} {old}")).headers("6f1c:9", at, body)
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert signatures[0] == Signer([new]).headers("6f1c:9", at, body)["webhook-signature"]
    assert signatures[1] == Signer([old]).headers("6f1c:9", at, body)["webhook-signature"]
    for secret in (new, old):
        assert Webhook(secret).verify(body, headers) == json.loads(body)


def test_the_secret_setting_takes_the_spec_s_form_only() -> None:
    a, b = new_webhook_secret(), new_webhook_secret()
    assert parse_secrets(a) == (a,)
    assert parse_secrets(f" {a} ,{b} ") == (a, b)
    assert parse_secrets(f"{a}\n{b}") == (a, b)
    bare = a.removeprefix("whsec_")  # the key alone is the spec's form too
    assert parse_secrets(bare) == (bare,)
    short = "whsec_" + base64.b64encode(b"x" * 23).decode()
    for bad, error in (
        ("", "no secret"),
        ("whsec_not base64!", "base64"),
        ("whsec_%%%", "base64"),
        (short, "at least 24 bytes"),
    ):
        with pytest.raises(ConfigError, match=error):
            parse_secrets(bad)


def test_the_default_schedule_doubles_to_an_hour_and_ends_within_a_day() -> None:
    policy = RetryPolicy()
    delays = [policy.delay_after(n, "job:7") for n in range(1, policy.max_attempts)]
    assert all(d is not None for d in delays)
    waits = [d for d in delays if d is not None]
    assert 4.5 <= waits[0] <= 5.0
    assert 9.0 <= waits[1] <= 10.0
    assert 3240.0 <= waits[-1] <= 3600.0
    # Doubling until the cap, each less at most a tenth.
    for n, wait in enumerate(waits, start=1):
        full = min(5.0 * 2 ** (n - 1), 3600.0)
        assert 0.9 * full <= wait <= full
    assert 21 * 3600 < sum(waits) < 24 * 3600  # the last try: under a day after the first
    assert policy.delay_after(policy.max_attempts, "job:7") is None


def test_the_spread_is_fixed_per_delivery_and_differs_between_them() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_s=100.0, backoff_max_s=1000.0)
    assert policy.delay_after(2, "a:1") == policy.delay_after(2, "a:1")
    spread = {policy.delay_after(2, f"job-{i}:9") for i in range(50)}
    assert len(spread) > 40
    assert all(d is not None and 180.0 <= d <= 200.0 for d in spread)


def test_after_a_try_a_delivery_is_delivered_retried_or_dead() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_s=0.2, backoff_max_s=0.5)
    ok, failed = TryResult(status=204), TryResult(status=500)
    assert policy.after(1, ok, "x") == (DeliveryState.DELIVERED, None)
    assert policy.after(3, ok, "x") == (DeliveryState.DELIVERED, None)
    state, delay = policy.after(1, failed, "x")
    assert state is DeliveryState.PENDING
    assert delay is not None
    assert 0.18 <= delay <= 0.2
    state, delay = policy.after(2, TryResult(error="refused"), "x")
    assert state is DeliveryState.PENDING
    assert delay is not None
    assert 0.36 <= delay <= 0.4
    assert policy.after(3, failed, "x") == (DeliveryState.DEAD, None)
    assert policy.after(3, TryResult(error="timeout"), "x") == (DeliveryState.DEAD, None)


@pytest.mark.parametrize(
    ("result", "delivered", "outcome"),
    [
        (TryResult(status=200), True, "delivered"),
        (TryResult(status=299), True, "delivered"),
        (TryResult(status=302), False, "http_error"),
        (TryResult(status=199), False, "http_error"),
        (TryResult(status=500), False, "http_error"),
        (TryResult(error="dns"), False, "dns"),
    ],
)
def test_only_a_2xx_is_delivered(result: TryResult, delivered: bool, outcome: str) -> None:
    assert result.delivered is delivered
    assert result.outcome == outcome


class _Resolver:
    def __init__(self, *answers: str) -> None:
        self.answers = [ipaddress.ip_address(a) for a in answers]
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.calls.append((host, port))
        return self.answers


def _sender(
    handler: httpx.MockTransport, resolver: _Resolver, allow: str = "", secret: str = ""
) -> Sender:
    return Sender(
        Signer([secret or new_webhook_secret()]),
        parse_allow_hosts(allow),
        timeout_s=1.0,
        connect_timeout_s=0.5,
        resolve=resolver,
        transport=handler,
    )


async def test_a_try_goes_to_the_address_checked_with_the_name_for_tls_and_host() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, content=b"x" * 1_000_000)

    secret = new_webhook_secret()
    resolver = _Resolver("93.184.216.34", "2606:4700:4700::1111")
    sender = _sender(httpx.MockTransport(handler), resolver, secret=secret)
    body = webhook_body(_event())
    result = await sender.send("https://Hooks.Example.com:8443/in?sig=s3cr3t", "j:9", body)
    await sender.close()
    assert result == TryResult(status=202)
    assert resolver.calls == [("hooks.example.com", 8443)]  # once, by the notifier
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://93.184.216.34:8443/in?sig=s3cr3t"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.headers["content-type"] == "application/json"
    assert request.content == body
    assert Webhook(secret).verify(request.content, dict(request.headers)) == json.loads(body)


async def test_an_ipv6_literal_is_connected_to_as_written() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    sender = _sender(httpx.MockTransport(handler), _Resolver(), allow="::1")
    assert (await sender.send("http://[::1]:9000/x", "j:9", b"{}")).delivered
    await sender.close()
    (request,) = seen
    assert str(request.url) == "http://[::1]:9000/x"
    assert request.headers["host"] == "[::1]:9000"
    assert "sni_hostname" not in request.extensions


async def test_a_redirect_is_a_failed_try_and_is_not_followed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(307, headers={"location": "http://169.254.169.254/"})

    sender = _sender(httpx.MockTransport(handler), _Resolver("93.184.216.34"))
    result = await sender.send("https://hooks.example.com/", "j:9", b"{}")
    await sender.close()
    assert result == TryResult(status=307)
    assert not result.delivered
    assert seen == ["https://93.184.216.34/"]


@pytest.mark.parametrize(
    ("url", "answers", "error"),
    [
        ("https://hooks.example.com/", ("10.0.0.7",), "refused"),  # rebound to the inside
        ("https://hooks.example.com/", ("93.184.216.34", "169.254.169.254"), "refused"),
        ("https://hooks.example.com/", (), "dns"),
        ("http://hooks.example.com/", ("93.184.216.34",), "refused"),  # no longer allowed
        ("https://127.0.0.1/", (), "refused"),
    ],
)
async def test_a_refused_address_is_never_connected_to(
    url: str, answers: tuple[str, ...], error: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"connected to {request.url}")

    sender = _sender(httpx.MockTransport(handler), _Resolver(*answers))
    assert await sender.send(url, "j:9", b"{}") == TryResult(error=error)
    await sender.close()


async def test_a_try_has_a_deadline_and_failures_are_classed() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("garbage", request=request)

    for handler, error in ((slow, "timeout"), (refused, "connect"), (broken, "protocol")):
        sender = _sender(httpx.MockTransport(handler), _Resolver("93.184.216.34"))
        assert await sender.send("https://hooks.example.com/", "j:9", b"{}") == TryResult(
            error=error
        )
        await sender.close()


async def test_the_next_checked_address_is_tried_only_when_one_takes_no_connection() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.host == "2606:4700:4700::1111":
            raise httpx.ConnectError("network unreachable", request=request)
        return httpx.Response(500 if request.url.host == "93.184.216.34" else 200)

    resolver = _Resolver("2606:4700:4700::1111", "93.184.216.34", "93.184.216.35")
    sender = _sender(httpx.MockTransport(handler), resolver)
    # The second address answers: its 500 is the try's outcome, the third is not tried.
    assert await sender.send("https://hooks.example.com/", "j:9", b"{}") == TryResult(status=500)
    await sender.close()
    assert seen == ["2606:4700:4700::1111", "93.184.216.34"]
    assert resolver.calls == [("hooks.example.com", 443)]
