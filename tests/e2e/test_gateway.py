"""The browser gateway against the real stack: every route over real HTTP, the SSE stream
(replay, tail, Last-Event-ID, 204, keepalive, end), watch tokens, other users, CORS, body
limits, and a disconnected client freeing its upstream WatchJob stream."""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import ServiceProcess, Stack
from devstack.servers import free_port
from jobtypes import CATALOG
from tests.e2e.conftest import CORS_ORIGIN, GATEWAY_MAX_BODY_BYTES

pytestmark = pytest.mark.e2e


class Http:
    """A caller of the gateway with one user's token."""

    def __init__(self, client: httpx.AsyncClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def headers(self, **extra: str) -> dict[str, str]:
        base = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        return {**base, **extra}

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = self.headers(**kwargs.pop("headers", {}))
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    async def create(self, job_type: str = "noop", **input: Any) -> dict[str, Any]:
        job: dict[str, Any] = await self.ok(
            "POST", "/v1/jobs", json={"type": job_type, "input": input}
        )
        return job

    async def events(
        self, job_id: str, query: str = "", headers: dict[str, str] | None = None
    ) -> tuple[httpx.Response, list[dict[str, str]]]:
        """Every SSE message of one stream, read to its end."""
        url = f"/v1/jobs/{job_id}/events{query}"
        async with self.client.stream("GET", url, headers=self.headers(**(headers or {}))) as r:
            if r.status_code != 200:
                await r.aread()
                return r, []
            return r, [m async for m in sse_messages(r)]


async def sse_messages(response: httpx.Response) -> AsyncGenerator[dict[str, str], None]:
    """SSE messages as dicts of their fields; a comment line is ``{"comment": text}``."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if fields:
                yield fields
            fields = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = f"{fields[name]}\n{value}" if name in fields else value


def sequences(messages: list[dict[str, str]]) -> list[int]:
    return [int(m["id"]) for m in messages if "id" in m]


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=20) as client:
        yield client


@pytest.fixture
def alice(http: httpx.AsyncClient, stack: Stack) -> Http:
    return Http(http, stack.token("alice"))


@pytest.fixture
def bob(http: httpx.AsyncClient, stack: Stack) -> Http:
    return Http(http, stack.token("bob"))


async def test_every_job_route_round_trips_as_json(alice: Http) -> None:
    types = await alice.ok("GET", "/v1/jobTypes")
    assert "cv_tailoring" in [t["name"] for t in types["jobTypes"]]

    await alice.events((await alice.create())["jobId"])  # one finished job at least
    job = await alice.create(sleep_ms=50)
    assert job["status"] == "JOB_STATUS_QUEUED"
    assert job["progress"] == 0  # printed although it is the default
    assert set(job) >= {"jobId", "type", "steps", "createdAt", "updatedAt"}
    job_id = job["jobId"]

    await alice.events(job_id)
    fetched = await alice.ok("GET", f"/v1/jobs/{job_id}")
    assert fetched["status"] == "JOB_STATUS_SUCCEEDED"
    assert fetched["progress"] == 100

    listed = await alice.ok("GET", "/v1/jobs?pageSize=1&status=JOB_STATUS_SUCCEEDED&type=noop")
    assert len(listed["jobs"]) == 1
    assert listed["nextPageToken"]
    more = await alice.ok(
        "GET",
        "/v1/jobs?page_size=1&status=JOB_STATUS_SUCCEEDED&type=noop"
        f"&pageToken={listed['nextPageToken']}",
    )
    assert more["jobs"][0]["jobId"] != listed["jobs"][0]["jobId"]

    slow = await alice.create(sleep_ms=5000)
    cancelled = await alice.ok("POST", f"/v1/jobs/{slow['jobId']}:cancel", json={})
    assert cancelled["status"] == "JOB_STATUS_CANCELLED"
    retried = await alice.ok("POST", f"/v1/jobs/{slow['jobId']}:retry")
    assert retried["status"] == "JOB_STATUS_QUEUED"
    assert await alice.ok("DELETE", f"/v1/jobs/{slow['jobId']}") == {}
    gone = await alice.call("GET", f"/v1/jobs/{slow['jobId']}")
    assert gone.status_code == 404

    issued = await alice.ok("POST", f"/v1/jobs/{job_id}:watchToken", json={})
    assert set(issued) == {"token", "expiresAt"}
    assert issued["expiresAt"].endswith("Z")


async def test_idempotency_key_in_either_spelling(alice: Http) -> None:
    key = f"gw-{uuid.uuid4()}"
    first = await alice.ok(
        "POST", "/v1/jobs", json={"type": "noop", "input": {}, "idempotencyKey": key}
    )
    again = await alice.ok(
        "POST", "/v1/jobs", json={"type": "noop", "input": {}, "idempotency_key": key}
    )
    assert again["jobId"] == first["jobId"]
    clash = await alice.call(
        "POST", "/v1/jobs", json={"type": "noop", "input": {"a": 1}, "idempotencyKey": key}
    )
    assert clash.status_code == 409
    assert clash.json()["code"] == 6  # ALREADY_EXISTS


async def test_the_event_stream_replays_then_tails_to_the_end(alice: Http) -> None:
    # Steps of 1.2 s, each reporting progress half-way: 0.6 s without an event, more than
    # the 0.5 s keepalive interval.
    job = await alice.create(sleep_ms=1200)
    response, messages = await alice.events(job["jobId"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    events = [m for m in messages if "id" in m]
    assert sequences(events) == list(range(1, len(events) + 1))
    assert all("event" not in m for m in events)  # plain messages: onmessage gets them
    assert '"JOB_EVENT_TYPE_SUCCEEDED"' in events[-1]["data"]
    assert messages[-1] == {"event": "end", "data": f'{{"sequence":{len(events)}}}'}
    # Quiet long enough for a keepalive, between events.
    keepalives = [n for n, m in enumerate(messages) if m == {"comment": "keepalive"}]
    assert keepalives
    assert all(0 < n < len(messages) - 1 for n in keepalives)


async def test_the_event_stream_ends_its_lines_in_lf_and_its_messages_in_a_blank_line(
    alice: Http,
) -> None:
    job = await alice.create(sleep_ms=20)
    url = f"/v1/jobs/{job['jobId']}/events"
    async with alice.client.stream("GET", url, headers=alice.headers()) as response:
        body = (await response.aread()).decode()
    assert "\r" not in body
    blocks = [b for b in body.split("\n\n") if b]
    assert blocks[0].startswith("id: 1\ndata: {")
    events = [b for b in blocks if b.startswith("id: ")]  # keepalive comments aside
    assert blocks[-1] == f'event: end\ndata: {{"sequence":{len(events)}}}'


async def test_last_event_id_resumes_with_exactly_the_missing_events(alice: Http) -> None:
    job = await alice.create(sleep_ms=20)
    _, whole = await alice.events(job["jobId"])
    last = sequences(whole)[-1]
    _, resumed = await alice.events(job["jobId"], "?after_sequence=1", {"Last-Event-ID": "4"})
    assert sequences(resumed) == list(range(5, last + 1))
    _, by_query = await alice.events(job["jobId"], "?afterSequence=7")
    assert sequences(by_query) == list(range(8, last + 1))
    bad = await alice.call("GET", f"/v1/jobs/{job['jobId']}/events", headers={"Last-Event-ID": "x"})
    assert bad.status_code == 400


async def test_a_finished_stream_answers_204(alice: Http) -> None:
    job = await alice.create()
    _, messages = await alice.events(job["jobId"])
    last = sequences(messages)[-1]
    started = time.monotonic()
    response, _ = await alice.events(job["jobId"], headers={"Last-Event-ID": str(last)})
    assert response.status_code == 204
    response, _ = await alice.events(job["jobId"], f"?after_sequence={2**62}")
    assert response.status_code == 204
    assert time.monotonic() - started < 3


async def test_watch_tokens_open_one_jobs_events_and_nothing_else(
    alice: Http, http: httpx.AsyncClient
) -> None:
    job = await alice.create(sleep_ms=50)
    other = await alice.create()
    token = (await alice.ok("POST", f"/v1/jobs/{job['jobId']}:watchToken"))["token"]
    anonymous = Http(http, None)

    response, messages = await anonymous.events(job["jobId"], f"?access_token={token}")
    assert response.status_code == 200
    assert messages[-1]["event"] == "end"
    # The same token as a bearer header works on the events route too.
    response, _ = await Http(http, token).events(job["jobId"], "?after_sequence=0")
    assert response.status_code == 200

    response, _ = await anonymous.events(other["jobId"], f"?access_token={token}")
    assert response.status_code == 403
    as_bearer = Http(http, token)
    for method, path in [
        ("GET", f"/v1/jobs/{job['jobId']}"),
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobTypes"),
        ("POST", f"/v1/jobs/{job['jobId']}:cancel"),
        ("POST", f"/v1/jobs/{job['jobId']}:watchToken"),
        ("DELETE", f"/v1/jobs/{job['jobId']}"),
    ]:
        assert (await as_bearer.call(method, path)).status_code == 401, path
        in_query = await anonymous.call(method, f"{path}?access_token={token}")
        assert in_query.status_code == 401, path

    # A user's own JWT is never accepted in a URL.
    response, _ = await anonymous.events(job["jobId"], f"?access_token={alice.token}")
    assert response.status_code == 401
    assert "watch token" in response.json()["message"]


async def test_other_users_get_404_everywhere(alice: Http, bob: Http) -> None:
    job = await alice.create(sleep_ms=2000)
    for method, path in [
        ("GET", f"/v1/jobs/{job['jobId']}"),
        ("POST", f"/v1/jobs/{job['jobId']}:cancel"),
        ("POST", f"/v1/jobs/{job['jobId']}:retry"),
        ("POST", f"/v1/jobs/{job['jobId']}:watchToken"),
        ("DELETE", f"/v1/jobs/{job['jobId']}"),
        ("GET", f"/v1/jobs/{job['jobId']}/events"),
    ]:
        response = await bob.call(method, path)
        assert response.status_code == 404, path
        assert response.json() == {"code": 5, "message": "job not found", "details": []}
    assert job["jobId"] not in str(await bob.ok("GET", "/v1/jobs"))
    await alice.ok("POST", f"/v1/jobs/{job['jobId']}:cancel")


async def test_errors_are_google_rpc_status_with_details(
    alice: Http, http: httpx.AsyncClient
) -> None:
    missing = await Http(http, None).call("GET", "/v1/jobTypes")
    assert missing.status_code == 401
    assert missing.json()["code"] == 16

    bad_type = await alice.call("POST", "/v1/jobs", json={"type": "nope", "input": {}})
    assert bad_type.status_code == 400
    details = bad_type.json()["details"]
    assert details[0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert details[0]["fieldViolations"][0]["field"] == "type"

    for body, field in [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"type": "noop", "bogus": 1}', "bogus"),
        (b'{"type": 7}', "type"),
    ]:
        response = await alice.call(
            "POST", "/v1/jobs", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, body
        violation = response.json()["details"][0]["fieldViolations"][0]
        assert violation["field"] == field, response.text
        assert "Traceback" not in response.text
        assert "class" not in response.text

    for query, field in [("pageSize=abc", "page_size"), ("colour=red", "colour")]:
        response = await alice.call("GET", f"/v1/jobs?{query}")
        assert response.status_code == 400
        assert response.json()["details"][0]["fieldViolations"][0]["field"] == field

    wrong_state = await alice.call("POST", f"/v1/jobs/{(await alice.create())['jobId']}:retry")
    assert wrong_state.status_code in (409, 200)  # 409 unless the job already failed
    unknown = await alice.call("GET", "/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == 5
    wrong_verb = await alice.call("PUT", "/v1/jobs")
    assert wrong_verb.status_code == 405


async def test_rate_limits_answer_429_with_retry_after(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    caller = Http(http, stack.token(f"gw-limits-{uuid.uuid4().hex[:8]}"))
    created: list[str] = []
    refused: httpx.Response | None = None
    for _ in range(60):
        response = await caller.call(
            "POST", "/v1/jobs", json={"type": "noop", "input": {"sleep_ms": 3000}}
        )
        if response.status_code != 200:
            refused = response
            break
        created.append(response.json()["jobId"])
    assert refused is not None
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    kinds = [d["@type"] for d in refused.json()["details"]]
    assert "type.googleapis.com/google.rpc.RetryInfo" in kinds
    for job_id in created:
        await caller.call("POST", f"/v1/jobs/{job_id}:cancel")


async def test_cors_preflight_and_simple_requests(alice: Http, http: httpx.AsyncClient) -> None:
    preflight = await http.options(
        "/v1/jobs",
        headers={
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()

    foreign = await http.options(
        "/v1/jobs",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert foreign.status_code == 400
    assert "access-control-allow-origin" not in foreign.headers

    response = await alice.call("GET", "/v1/jobTypes", headers={"Origin": CORS_ORIGIN})
    assert response.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert response.headers.get("access-control-allow-origin") != "*"


async def test_oversized_bodies_get_413(alice: Http) -> None:
    # httpx writes the whole body before it reads anything: it gets these 413s only
    # because the gateway reads the rest of the body before it closes the connection
    # (a reset would cost it the answer; see the next test).
    huge = {"type": "noop", "input": {"blob": "x" * (GATEWAY_MAX_BODY_BYTES + 1)}}
    response = await alice.call("POST", "/v1/jobs", json=huge)
    assert response.status_code == 413
    assert response.json()["code"] == 3

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(GATEWAY_MAX_BODY_BYTES // 8192 + 2):
            yield b" " * 8192

    chunked = await alice.call(
        "POST", "/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413
    assert chunked.headers["connection"] == "close"


async def test_a_413_comes_early_and_the_connection_closes_only_after_the_body(
    alice: Http, stack: Stack
) -> None:
    """On the wire: the 413 is sent as soon as a chunked body passes the limit; the rest of
    the body is still accepted; then the server closes with a FIN. Closing at once, with
    the body's rest unread, would make the kernel send a reset instead, and a client still
    writing (one that reads only after its body is sent) would never see the 413
    (RFC 9112 section 9.6)."""
    url = httpx.URL(stack.gateway_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    chunk = b"2000\r\n" + b" " * 0x2000 + b"\r\n"
    try:
        writer.write(
            b"POST /v1/jobs HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {alice.token}\r\n".encode()
            + b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(GATEWAY_MAX_BODY_BYTES // 0x2000 + 1):
            writer.write(chunk)
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status, *lines = head.decode().lower().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines if line)
        assert status.startswith("http/1.1 413"), head
        assert headers["connection"] == "close"
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
        assert b'"code":3' in body
        # The answer is in; the client goes on sending (512 KiB more) and finishes.
        for _ in range(64):
            writer.write(chunk)
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        # The end of the stream, not ConnectionResetError.
        assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        writer.close()


async def _gauge(http: httpx.AsyncClient, metrics_url: str, name: str) -> float:
    text = (await http.get(metrics_url)).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


async def _eventually(check: Callable[[], Awaitable[bool]], what: str, within_s: float) -> None:
    """Poll ``check`` until it holds, failing with ``what`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_client_that_goes_away_frees_its_upstream_stream(
    alice: Http, http: httpx.AsyncClient, stack: Stack
) -> None:
    notifier_metrics = stack.services["notifier"].metrics_url

    async def upstream_streams() -> float:
        return await _gauge(http, notifier_metrics, "jobs_watch_streams_open")

    async def browser_streams() -> float:
        return await _gauge(http, "/metrics", "jobs_gateway_sse_streams_open")

    job = await alice.create(sleep_ms=10_000)
    before = await upstream_streams()
    url = f"/v1/jobs/{job['jobId']}/events"
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=20) as browser,
        browser.stream("GET", url, headers=alice.headers()) as response,
    ):
        assert response.status_code == 200
        # The iterator is kept, not left by ``break``: an abandoned generator over
        # aiter_lines() is finalized at once, and httpcore then closes the response. The
        # browser would be gone before the gauge is read.
        messages = sse_messages(response)
        while "id" not in await anext(messages):
            pass  # a keepalive before the first event
        await _eventually(
            lambda: _is(upstream_streams(), before + 1), "no upstream stream opened", 10
        )
        await anext(messages)  # the stream still delivers (an event or a keepalive) ...
        assert await upstream_streams() == before + 1  # ... and its upstream is still open
        assert await browser_streams() >= 1
    await messages.aclose()
    await _eventually(
        lambda: _is(upstream_streams(), before), "the upstream WatchJob stream was not closed", 10
    )
    await _eventually(lambda: _is(browser_streams(), 0), "the SSE stream was not closed", 10)
    await alice.ok("POST", f"/v1/jobs/{job['jobId']}:cancel")


async def test_a_gateway_shutting_down_ends_its_streams_at_once_and_cleanly(
    alice: Http, stack: Stack, tmp_path: Path
) -> None:
    """SIGTERM ends every open stream with a complete body (the browser's EventSource
    reconnects elsewhere and resumes from its last id) within a moment, not at the end of
    the shutdown grace, which here is long enough to tell the two apart."""
    env = {
        **stack.service_env("gateway"),
        "HTTP_ADDR": f"127.0.0.1:{free_port()}",
        "SHUTDOWN_GRACE_S": "30",
    }
    job = await alice.create(sleep_ms=60_000)
    gateway = ServiceProcess("gateway", env, tmp_path / "gateway.log").start()
    url = f"http://{env['HTTP_ADDR']}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=20) as browser:
            await _eventually(lambda: _answers(browser, "/readyz"), "the gateway is not ready", 30)
            path = f"/v1/jobs/{job['jobId']}/events"
            async with browser.stream("GET", path, headers=alice.headers()) as response:
                assert response.status_code == 200
                messages = sse_messages(response)
                while "id" not in await anext(messages):
                    pass
                gateway.signal(signal.SIGTERM)
                started = time.monotonic()
                # The body ends: no error from httpx, which raises on a cut chunked body.
                rest = [m async for m in messages]
                ended_s = time.monotonic() - started
        assert all(m.get("event") != "end" for m in rest)  # the job is not over
        assert ended_s < 5, ended_s
        assert await asyncio.to_thread(gateway.stop, 10) == 0
    finally:
        gateway.kill()
        await alice.ok("POST", f"/v1/jobs/{job['jobId']}:cancel")


async def _answers(client: httpx.AsyncClient, path: str) -> bool:
    try:
        return (await client.get(path)).status_code == 200
    except httpx.TransportError:
        return False


async def _is(value: Awaitable[float], expected: float) -> bool:
    return await value == expected


async def test_health_metrics_openapi_and_page(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/readyz")).json() == {"status": "ready"}
    metrics = (await http.get("/metrics")).text
    assert (
        'jobs_gateway_request_duration_seconds_count{code="200",method="GET",route="/readyz"}'
        in (metrics)
    )
    document = (await http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) >= {
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}:cancel",
        "/v1/jobs/{job_id}:retry",
        "/v1/jobs/{job_id}:watchToken",
        "/v1/jobs/{job_id}/events",
        "/v1/jobTypes",
    }
    page = await http.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    example = await http.get("/examples/cv_tailoring.json")
    assert example.json()["type"] == "cv_tailoring"
    # Every type has one, and the index (public, for a page without a token) lists them.
    assert (await http.get("/examples/index.json")).json() == {"types": list(CATALOG)}
    for name in ("../pyproject", "..%2F..%2Fpyproject", "nope"):
        assert (await http.get(f"/examples/{name}.json")).status_code == 404
