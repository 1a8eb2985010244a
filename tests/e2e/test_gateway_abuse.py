"""The abuse suite, HTTP side: what a hostile browser or script can send the gateway. Bad
and forged tokens, forged watch tokens, path traversal, huge and malformed bodies, header
injection, tokens in URLs. Every answer is the exact status expected, a google.rpc.Status
body without internals, and nothing secret reaches a log line."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from devstack import Stack
from tests.e2e.conftest import AUDIENCE, ISSUER

pytestmark = pytest.mark.e2e

#: Every route, with a job id filled in where it takes one.
ROUTES = [
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs/{id}"),
    ("GET", "/v1/jobs"),
    ("POST", "/v1/jobs/{id}:cancel"),
    ("POST", "/v1/jobs/{id}:retry"),
    ("DELETE", "/v1/jobs/{id}"),
    ("GET", "/v1/jobTypes"),
    ("POST", "/v1/jobs/{id}:watchToken"),
    ("GET", "/v1/jobs/{id}/events"),
]


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=20) as client:
        yield client


async def _job(http: httpx.AsyncClient, token: str, **input: Any) -> str:
    response = await http.post(
        "/v1/jobs",
        json={"type": "noop", "input": input},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def _assert_clean(response: httpx.Response) -> None:
    """A google.rpc.Status body that reveals nothing about the gateway's insides."""
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    for leak in ("Traceback", "class '", "Error(", "grpc", "_pb2", "site-packages"):
        assert leak not in response.text, response.text


def _b64(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def _bad_tokens(stack: Stack) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "mallory", "exp": now + 600, "iss": ISSUER, "aud": AUDIENCE}
    return {
        "garbage": "not-a-jwt",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "wrong secret": jwt.encode(
            claims, "a-guessed-secret-of-32-bytes-or-more", algorithm="HS256"
        ),
        "expired": jwt.encode({**claims, "exp": now - 3600}, stack.jwt_secret, algorithm="HS256"),
        "wrong audience": jwt.encode({**claims, "aud": "other"}, stack.jwt_secret, "HS256"),
        "sub with NUL": jwt.encode({**claims, "sub": "ma\x00llory"}, stack.jwt_secret, "HS256"),
        "huge": "x" * 20_000,
    }


async def test_bad_tokens_are_401_on_every_route(http: httpx.AsyncClient, stack: Stack) -> None:
    job_id = await _job(http, stack.token("abuse-owner"))
    schemes = [f"Bearer {t}" for t in _bad_tokens(stack).values()]
    schemes += ["Bearer", f"Basic {stack.token('alice')}", "Bearer\tx.y.z"]
    for method, route in ROUTES:
        path = route.format(id=job_id)
        for header in [*schemes, None]:
            headers = {} if header is None else {"Authorization": header}
            response = await http.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, header[:20] if header else None)
            _assert_clean(response)
            assert response.json()["code"] == 16


async def test_forged_and_borrowed_watch_tokens(http: httpx.AsyncClient, stack: Stack) -> None:
    owner = stack.token("abuse-watch-owner")
    job_id = await _job(http, owner, sleep_ms=20)
    other_id = await _job(http, owner)
    now = int(time.time())
    claims = {
        "sub": "abuse-watch-owner",
        "job": job_id,
        "aud": "jobs.v1.NotifierService/WatchJob",
        "exp": now + 600,
    }
    watch_typ = {"typ": "jobs-watch+jwt"}
    forged = {
        # The watch-token shape, signed with the user-token secret instead of the derived key.
        "signed with JWT_SECRET": jwt.encode(claims, stack.jwt_secret, "HS256", headers=watch_typ),
        "signed with a guess": jwt.encode(
            claims, "a-guessed-secret-of-32-bytes-or-more", "HS256", headers=watch_typ
        ),
        "alg none": f"{_b64({'alg': 'none', **watch_typ})}.{_b64(claims)}.",
    }
    for name, token in forged.items():
        response = await http.get(f"/v1/jobs/{job_id}/events?access_token={token}")
        assert response.status_code == 401, name
        _assert_clean(response)

    real = await http.post(
        f"/v1/jobs/{job_id}:watchToken", headers={"Authorization": f"Bearer {owner}"}
    )
    token = real.json()["token"]
    # Another job, with the token in the URL or as a header: 403.
    response = await http.get(f"/v1/jobs/{other_id}/events?access_token={token}")
    assert response.status_code == 403
    response = await http.get(
        f"/v1/jobs/{other_id}/events", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    # Tampered: the job claim swapped, the signature kept.
    head, payload, signature = token.split(".")
    swapped = json.loads(base64.urlsafe_b64decode(payload + "=="))
    swapped["job"] = other_id
    tampered = f"{head}.{_b64(swapped)}.{signature}"
    response = await http.get(f"/v1/jobs/{other_id}/events?access_token={tampered}")
    assert response.status_code == 401
    # A watch token never opens anything else, however it is presented.
    for method, route in ROUTES[:-1]:
        path = route.format(id=job_id)
        assert (
            await http.request(method, path, headers={"Authorization": f"Bearer {token}"})
        ).status_code == 401
        assert (await http.request(method, f"{path}?access_token={token}")).status_code == 401


async def test_path_traversal_and_odd_ids_go_nowhere(http: httpx.AsyncClient, stack: Stack) -> None:
    auth = {"Authorization": f"Bearer {stack.token('abuse-paths')}"}
    for raw in [
        "/v1/jobs/..%2F..%2Fetc%2Fpasswd",
        "/v1/jobs/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/v1/jobs/%00",
        "/v1/jobs/" + "a" * 5000,
        "/v1/jobs/' OR '1'='1",
        "/v1/jobs/%F0%9F%92%A9/events",
        "/v1/jobs/..;/..;/jobTypes",
    ]:
        response = await http.get(raw, headers=auth)
        assert response.status_code in (400, 404), raw
        _assert_clean(response)
    for raw in [
        "/static/../../pyproject.toml",
        "/static/..%2F..%2Fpyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/examples/..%2F..%2Fpyproject.json",
        "/examples/%2e%2e.json",
    ]:
        # Sent as-is: httpx would otherwise normalise the dots away.
        response = await http.request(
            "GET", httpx.URL(http.base_url.join("/")).copy_with(raw_path=raw.encode())
        )
        assert response.status_code in (400, 404), raw
        assert "durable-jobs" not in response.text  # pyproject.toml's content


async def test_huge_deep_and_malformed_bodies(http: httpx.AsyncClient, stack: Stack) -> None:
    auth = {"Authorization": f"Bearer {stack.token('abuse-bodies')}"}
    # Declared larger than the limit: refused before a byte of it is read.
    huge = await _raw_request(
        stack,
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4294967296\r\n\r\n{",
    )
    assert huge.startswith(b"HTTP/1.1 413")
    deep: Any = {}
    for _ in range(200):
        deep = {"a": deep}
    for body in [
        json.dumps({"type": "noop", "input": deep}).encode(),
        b'{"type": "noop", "input": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"type": "noop", "input": {"text": "\xff\xfe"}}',
        json.dumps({"type": "noop", "idempotencyKey": "a\u0000b"}).encode(),
        json.dumps({"type": "no\u0000op"}).encode(),
        b'{"type": "noop", "input": "not an object"}',
        b'{"type": "noop", "input": {}, "type": "cv_tailoring"',
    ]:
        response = await http.post(
            "/v1/jobs", content=body, headers={**auth, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, (body[:60], response.text)
        _assert_clean(response)


async def _raw_request(stack: Stack, request: bytes) -> bytes:
    """A request written byte for byte, past any client library's checks."""
    parts = urlsplit(stack.gateway_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


async def test_header_injection_is_refused(http: httpx.AsyncClient, stack: Stack) -> None:
    token = stack.token("abuse-headers")
    job_id = await _job(http, token)
    # A CR/LF smuggled into a header value: the HTTP parser refuses the request.
    smuggled = await _raw_request(
        stack,
        b"GET /v1/jobTypes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + token.encode()
        + b"\rX-Injected: 1\r\n\r\n",
    )
    assert smuggled.startswith(b"HTTP/1.1 400")
    assert b"X-Injected" not in smuggled
    # Non-ASCII and control characters where gRPC metadata cannot carry them.
    auth = f"Bearer {token}"
    weird = await _raw_request(
        stack,
        b"GET /v1/jobTypes HTTP/1.1\r\nHost: x\r\nAuthorization: "
        + auth.encode()
        + b"\xc3\xa9\r\nConnection: close\r\n\r\n",
    )
    assert weird.startswith(b"HTTP/1.1 401")
    for value in ["x\r\nid: 999", "9\x00", "-1", "1e3", "0x10"]:
        try:
            response = await http.get(
                f"/v1/jobs/{job_id}/events",
                headers={"Authorization": auth, "Last-Event-ID": value},
            )
        except httpx.LocalProtocolError:
            continue  # the client itself refused to send it
        assert response.status_code == 400, value
        _assert_clean(response)
    traced = await http.get(
        "/v1/jobTypes", headers={"Authorization": auth, "traceparent": "00-zz\x7f-garbage"}
    )
    assert traced.status_code in (200, 400)
    # Origins outside the allow-list are never reflected.
    response = await http.get(
        "/v1/jobTypes", headers={"Authorization": auth, "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in response.headers


async def test_tokens_in_urls_never_reach_a_log(http: httpx.AsyncClient, stack: Stack) -> None:
    owner = stack.token(f"abuse-logs-{uuid.uuid4().hex[:6]}")
    job_id = await _job(http, owner)
    watch = (
        await http.post(
            f"/v1/jobs/{job_id}:watchToken", headers={"Authorization": f"Bearer {owner}"}
        )
    ).json()["token"]
    await http.get(f"/v1/jobs/{job_id}/events?access_token={watch}")
    await http.get(f"/v1/jobs/{job_id}/events?access_token={owner}")
    await http.get(f"/v1/jobs/{job_id}?access_token={owner}")
    await asyncio.sleep(0.5)
    for service in stack.services.values():
        text = service.log_path.read_text(encoding="utf-8")
        for secret in (watch, owner, watch.split(".")[2], owner.split(".")[2]):
            assert secret not in text, service.name
