"""Signed completion webhooks against the whole stack: a stack of this module's own, with
127.0.0.1 allowed (``WEBHOOK_ALLOW_HOSTS``), two signing secrets (a rotation), four tries
a few tenths of a second apart, and a receiver on 127.0.0.1 that fails a delivery's first
two tries (``/flaky``), always fails (``/down``) or redirects (``/moved``).

Every request the receiver gets is checked against the Standard Webhooks spec: the
signature recomputed here by the spec's algorithm (HMAC-SHA256 of ``id.timestamp.body``
under the base64-decoded key), and by the ``standardwebhooks`` package's own verify, with
each of the two secrets. The SSRF refusals at CreateJob run against this stack and against
the session's stack, which allows no host.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from standardwebhooks import Webhook

from devstack import Stack
from devstack.stack import new_webhook_secret
from jobctl.client import JobsClient
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.e2e.rejections import field_violations
from tests.e2e.test_gateway import Http
from tests.e2e.test_jobctl import jobctl

pytestmark = pytest.mark.e2e

NEW_SECRET, OLD_SECRET = new_webhook_secret(), new_webhook_secret()
MAX_ATTEMPTS = 4
#: Tries the receiver fails at /flaky before it answers 200.
FLAKY_FAILURES = 2


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request it answers."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.port}/{route}/{uuid.uuid4().hex}?token=s3cr3t-path-query"

    def answer(self, path: str, webhook_id: str) -> int:
        with self.lock:
            earlier = sum(1 for r in self.requests if r.headers.get("webhook-id") == webhook_id)
        if path.startswith("/flaky/"):
            return 500 if earlier < FLAKY_FAILURES else 200
        if path.startswith("/down/"):
            return 503
        if path.startswith("/moved/"):
            return 302
        return 200

    def of(self, url: str) -> list[Received]:
        path = url.split(f"127.0.0.1:{self.port}", 1)[1]
        with self.lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = state.answer(self.path.split("?")[0], headers.get("webhook-id", ""))
            with state.lock:
                state.requests.append(Received(self.path, headers, body, status, time.time()))
            self.send_response(status)
            if status == 302:
                self.send_header("location", "/ok/redirected")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"no")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def hook_stack(tmp_root: Path) -> Iterator[Stack]:
    env = {
        "WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        # A rotation: both sign, a receiver that knows either one verifies.
        "WEBHOOK_SECRET": f"{NEW_SECRET} {OLD_SECRET}",
        "WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "WEBHOOK_BACKOFF_S": "0.2",
        "WEBHOOK_BACKOFF_MAX_S": "0.5",
        "WEBHOOK_TIMEOUT_S": "5",
    }
    running = Stack(tmp_root / "webhook-stack", extra_env=env).start()
    yield running
    running.stop()


@pytest.fixture
async def carol(hook_stack: Stack) -> AsyncIterator[JobsClient]:
    async with JobsClient(
        hook_stack.job_api_addr, hook_stack.notifier_addr, hook_stack.token("carol")
    ) as client:
        yield client


async def finished_deliveries(
    client: JobsClient, job_id: str, count: int = 1, timeout_s: float = 30.0
) -> list[jobs_pb2.WebhookDelivery]:
    """The job's deliveries once ``count`` of them are over (delivered or dead)."""
    deadline = time.monotonic() + timeout_s
    while True:
        deliveries = await client.list_webhook_deliveries(job_id)
        over = [d for d in deliveries if d.state != jobs_pb2.WEBHOOK_DELIVERY_STATE_PENDING]
        if len(over) >= count:
            return deliveries
        assert time.monotonic() < deadline, f"deliveries still pending: {deliveries}"
        await asyncio.sleep(0.1)


def spec_signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The Standard Webhooks signature, by the spec's words rather than any library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def assert_signed(request: Received) -> dict[str, Any]:
    """The request carries one valid signature per secret; its verified payload."""
    webhook_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    assert abs(int(timestamp) - request.at) < 5
    signatures = request.headers["webhook-signature"].split(" ")
    assert sorted(signatures) == sorted(
        spec_signature(s, webhook_id, timestamp, request.body) for s in (NEW_SECRET, OLD_SECRET)
    )
    payloads = [Webhook(s).verify(request.body, request.headers) for s in (NEW_SECRET, OLD_SECRET)]
    assert payloads[0] == payloads[1]
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(new_webhook_secret()).verify(request.body, request.headers)
    assert request.headers["content-type"] == "application/json"
    payload: dict[str, Any] = payloads[0]
    return payload


async def test_a_job_s_end_is_delivered_signed_and_retried_under_one_id(
    hook_stack: Stack, carol: JobsClient, receiver: Receiver
) -> None:
    url = receiver.url("flaky")
    job = await carol.create_job("noop", {"sleep_ms": 1}, webhook_url=url)
    assert job.webhook_url == url
    events = [e async for e in carol.watch(job.job_id)]
    assert events[-1].type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED

    (delivery,) = await finished_deliveries(carol, job.job_id)
    assert delivery.state == jobs_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED
    assert delivery.webhook_id == f"{job.job_id}:{events[-1].sequence}"
    assert (delivery.type, delivery.sequence) == ("job.succeeded", events[-1].sequence)
    assert (delivery.attempts, delivery.last_status_code) == (FLAKY_FAILURES + 1, 200)
    assert delivery.HasField("finished_at")

    tries = receiver.of(url)
    assert [t.answered for t in tries] == [500, 500, 200]
    assert {t.headers["webhook-id"] for t in tries} == {delivery.webhook_id}
    assert len({t.body for t in tries}) == 1  # the same payload every time, re-signed
    assert [t.at for t in tries] == sorted(t.at for t in tries)
    assert tries[2].at - tries[0].at >= 0.2  # a back-off between them, not a burst
    payloads = [assert_signed(t) for t in tries]
    assert payloads[0]["type"] == "job.succeeded"
    datetime.fromisoformat(payloads[0]["timestamp"])  # RFC 3339
    assert tries[0].headers["host"] == f"127.0.0.1:{receiver.port}"

    # The data is the event exactly as the gateway's event stream sends it.
    async with httpx.AsyncClient(base_url=hook_stack.gateway_url, timeout=20) as http:
        through = Http(http, hook_stack.token("carol"))
        response, messages = await through.events(job.job_id)
    assert response.status_code == 200
    streamed = {int(m["id"]): json.loads(m["data"]) for m in messages if "id" in m}
    assert payloads[0]["data"] == streamed[events[-1].sequence]
    assert payloads[0]["data"]["type"] == "JOB_EVENT_TYPE_SUCCEEDED"
    assert payloads[0]["data"]["jobId"] == job.job_id


async def test_a_cancelled_job_and_a_failed_job_each_get_their_event(
    carol: JobsClient, receiver: Receiver
) -> None:
    cancel_url, fail_url = receiver.url("ok"), receiver.url("ok")
    running = await carol.create_job("noop", {"sleep_ms": 60_000}, webhook_url=cancel_url)
    # More failures than the step's five attempts: the orchestrator fails the job.
    failing = await carol.create_job("noop", {"fail_attempts": 10}, webhook_url=fail_url)
    await carol.cancel_job(running.job_id)

    for job_id, url, kind, event_type in (
        (running.job_id, cancel_url, "job.cancelled", "JOB_EVENT_TYPE_CANCELLED"),
        (failing.job_id, fail_url, "job.failed", "JOB_EVENT_TYPE_FAILED"),
    ):
        (delivery,) = await finished_deliveries(carol, job_id)
        assert delivery.state == jobs_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED
        assert (delivery.type, delivery.attempts) == (kind, 1)
        (request,) = receiver.of(url)
        payload = assert_signed(request)
        assert payload["type"] == kind
        assert payload["data"]["type"] == event_type
        assert payload["data"]["sequence"] == str(delivery.sequence)
        job = await carol.get_job(job_id)
        assert job.status in (jobs_pb2.JOB_STATUS_CANCELLED, jobs_pb2.JOB_STATUS_FAILED)


async def test_a_job_waiting_for_input_is_announced_then_its_end(
    carol: JobsClient, receiver: Receiver
) -> None:
    """A serverless backend hears a review is needed (job.input_required, with the request
    in the data), answers it, and hears the end."""
    url = receiver.url("ok")
    example = json.loads((Path(__file__).parents[2] / "examples" / "cv_tailoring.json").read_text())
    job = await carol.create_job(
        "cv_tailoring", {**example["input"], "review": True}, webhook_url=url
    )
    (asked,) = await finished_deliveries(carol, job.job_id)
    assert (asked.type, asked.state) == (
        "job.input_required",
        jobs_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED,
    )
    (request,) = receiver.of(url)
    payload = assert_signed(request)
    assert payload["type"] == "job.input_required"
    assert payload["data"]["type"] == "JOB_EVENT_TYPE_INPUT_REQUIRED"
    assert payload["data"]["step"] == "tailor_cv"
    assert "tailored_cv" in payload["data"]["inputRequest"]["draft"]
    await carol.submit_input(job.job_id, "tailor_cv", {"approved": True})
    deliveries = await finished_deliveries(carol, job.job_id, count=2)
    assert [d.type for d in deliveries] == ["job.input_required", "job.succeeded"]


async def test_a_retried_job_s_second_end_is_a_second_delivery(
    carol: JobsClient, receiver: Receiver
) -> None:
    url = receiver.url("ok")
    job = await carol.create_job("noop", {"sleep_ms": 60_000}, webhook_url=url)
    await carol.cancel_job(job.job_id)
    await finished_deliveries(carol, job.job_id)
    await carol.retry_job(job.job_id)
    await carol.cancel_job(job.job_id)
    first, second = await finished_deliveries(carol, job.job_id, count=2)
    assert first.sequence < second.sequence
    assert first.webhook_id != second.webhook_id
    assert {r.headers["webhook-id"] for r in receiver.of(url)} == {
        first.webhook_id,
        second.webhook_id,
    }


async def test_a_delivery_that_never_succeeds_is_a_dead_letter(
    hook_stack: Stack, carol: JobsClient, receiver: Receiver
) -> None:
    url = receiver.url("down")
    job = await carol.create_job("noop", {"sleep_ms": 1}, webhook_url=url)
    (delivery,) = await finished_deliveries(carol, job.job_id)
    assert delivery.state == jobs_pb2.WEBHOOK_DELIVERY_STATE_DEAD
    assert (delivery.attempts, delivery.last_status_code) == (MAX_ATTEMPTS, 503)
    assert not delivery.HasField("next_attempt_at")
    tries = receiver.of(url)
    assert len(tries) == MAX_ATTEMPTS
    assert {t.headers["webhook-id"] for t in tries} == {delivery.webhook_id}
    await asyncio.sleep(1.5)  # three back-offs' worth: nothing more comes
    assert len(receiver.of(url)) == MAX_ATTEMPTS

    for transport in ("grpc", "http"):
        shown = jobctl(
            hook_stack, "webhooks", job.job_id, token=hook_stack.token("carol"), transport=transport
        )
        assert shown.returncode == 0, shown.stderr
        (line,) = [row for row in shown.stdout.splitlines() if row.startswith(job.job_id)]
        assert line.split() == [
            delivery.webhook_id,
            "job.succeeded",
            str(MAX_ATTEMPTS),
            "dead",
            "503",
        ]
    listed = jobctl(
        hook_stack, "webhooks", job.job_id, "-o", "json", token=hook_stack.token("carol")
    )
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert entry["state"] == "WEBHOOK_DELIVERY_STATE_DEAD"
    assert entry["last_status_code"] == 503


async def test_a_redirect_is_a_failed_try_and_is_not_followed(
    carol: JobsClient, receiver: Receiver
) -> None:
    url = receiver.url("moved")
    job = await carol.create_job("noop", {"sleep_ms": 1}, webhook_url=url)
    (delivery,) = await finished_deliveries(carol, job.job_id)
    assert delivery.state == jobs_pb2.WEBHOOK_DELIVERY_STATE_DEAD
    assert delivery.last_status_code == 302
    assert not [r for r in receiver.requests if r.path == "/ok/redirected"]


async def test_the_deliveries_route_is_owner_checked(hook_stack: Stack, receiver: Receiver) -> None:
    async with httpx.AsyncClient(base_url=hook_stack.gateway_url, timeout=20) as http:
        owner, stranger = Http(http, hook_stack.token("dave")), Http(http, hook_stack.token("erin"))
        url = receiver.url("ok")
        job = await owner.ok(
            "POST", "/v1/jobs", json={"type": "noop", "input": {"sleep_ms": 1}, "webhookUrl": url}
        )
        assert job["webhookUrl"] == url
        path = f"/v1/jobs/{job['jobId']}/webhookDeliveries"
        refused = await stranger.call("GET", path)
        assert refused.status_code == 404
        deadline = time.monotonic() + 30
        while True:
            listed = await owner.ok("GET", path)
            if listed["deliveries"] and listed["deliveries"][0]["state"] != (
                "WEBHOOK_DELIVERY_STATE_PENDING"
            ):
                break
            assert time.monotonic() < deadline, listed
            await asyncio.sleep(0.1)
        (delivery,) = listed["deliveries"]
        assert delivery["state"] == "WEBHOOK_DELIVERY_STATE_DELIVERED"
        assert delivery["type"] == "job.succeeded"
        assert delivery["lastStatusCode"] == 200
        assert (
            await stranger.call("GET", "/v1/jobs/not-a-uuid/webhookDeliveries")
        ).status_code == 400


async def refused_url(stack: Stack, url: str) -> str:
    """CreateJob with ``url`` as its webhook must be INVALID_ARGUMENT naming
    ``webhook_url``: the violation's description."""
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("mallory")) as c:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await c.create_job("noop", {}, webhook_url=url)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, url
    ((name, why),) = field_violations(caught.value)
    assert name == "webhook_url"
    return why


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # A DNS name, not listed, that resolves to 127.0.0.1 (and ::1).
        ("https://localhost:9/hook", "resolves to a loopback address"),
        ("http://localhost:9/hook", "must be an https URL"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("https://169.254.169.254/", "cloud metadata"),
        ("http://10.0.0.1/", "private"),
        ("https://10.0.0.1/", "private"),
        ("https://[::1]/", "loopback"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://[fd00:ec2::254]/", "cloud metadata"),
        ("https://224.0.0.1/", "multicast"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://127.0.0.2/", "loopback"),
        ("https://user:pw@example.com/", "user info"),
        ("ftp://example.com/", "https"),
        ("https://example.com/" + "a" * 2048, "2048"),
        ("https://no-such-host.invalid/", "does not resolve"),
    ],
)
async def test_ssrf_is_refused_at_create_job(hook_stack: Stack, url: str, reason: str) -> None:
    assert reason in await refused_url(hook_stack, url)


async def test_loopback_is_refused_where_no_host_is_allowed(
    stack: Stack, hook_stack: Stack, receiver: Receiver
) -> None:
    """The session's stack lists no host: the receiver this module's stack reaches is a
    loopback address there."""
    url = receiver.url("ok")
    assert "loopback" in await refused_url(stack, url)
    async with JobsClient(
        hook_stack.job_api_addr, hook_stack.notifier_addr, hook_stack.token("mallory")
    ) as allowed:
        job = await allowed.create_job("noop", {"sleep_ms": 1}, webhook_url=url)
        assert job.webhook_url == url


def test_the_logs_name_the_host_only(hook_stack: Stack, receiver: Receiver) -> None:
    """Runs after the deliveries above: the URL's path and query (where receivers put
    their own secrets) and the signing secrets reach no log line; the host does."""
    said = {name: s.log_path.read_text(encoding="utf-8") for name, s in hook_stack.services.items()}
    for name, text in said.items():
        for secret in ("s3cr3t-path-query", NEW_SECRET, OLD_SECRET, "/flaky/", "/down/"):
            assert secret not in text, f"{name} logged {secret}"
    lines = [json.loads(line) for line in said["notifier"].splitlines() if line.startswith("{")]
    delivered = [line for line in lines if line["event"] == "webhook_delivered"]
    dead = [line for line in lines if line["event"] == "webhook_dead"]
    assert delivered
    assert dead
    assert {line["host"] for line in delivered + dead} == {"127.0.0.1"}
