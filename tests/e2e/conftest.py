"""The four services as separate processes on real Postgres and NATS, driven over gRPC.

The stack accepts HS256 tokens (its secret) and RS256 tokens from a JWKS file, checks an
issuer and an audience, and runs with small per-user limits so the abuse suite can reach
them quickly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack import SeaweedServer, Stack
from jobctl.client import JobsClient
from tests import fake_openai
from tests.fake_openai import FakeServer

ISSUER = "https://id.jobs.test"
AUDIENCE = "jobs-api"
RSA_KID = "e2e-rsa-1"
# Watches: "alice", shared by many modules, can hold sessions that were not closed yet (a
# close that failed while Postgres was down, a stream a loaded notifier saw end late; they
# expire after 60 s), so her cap leaves room; test_abuse checks the cap with its own user.
LIMITS = {"RATE_LIMIT_PER_MINUTE": 40, "MAX_RUNNING_JOBS_PER_USER": 20, "MAX_WATCHES_PER_USER": 10}
CORS_ORIGIN = "https://app.example.test"
GATEWAY_MAX_BODY_BYTES = 256 * 1024
GATEWAY_MAX_UPLOAD_BYTES = 1024 * 1024


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def stack(
    tmp_root: Path,
    rsa_key: rsa.RSAPrivateKey,
    seaweed_server: SeaweedServer,
) -> Iterator[Stack]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwks = tmp_root / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": RSA_KID, "use": "sig"}]}))
    env = {
        "JWT_JWKS_FILE": str(jwks),
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        **{k: str(v) for k, v in LIMITS.items()},
        # Queue-lag and outbox gauges, read often enough for test_observability.
        "METRICS_POLL_S": "0.5",
        # The gateway: one allowed foreign origin, keepalives and a body limit a test can
        # reach quickly.
        "CORS_ORIGINS": CORS_ORIGIN,
        "SSE_KEEPALIVE_S": "0.5",
        "GATEWAY_MAX_BODY_BYTES": str(GATEWAY_MAX_BODY_BYTES),
        "GATEWAY_MAX_UPLOAD_BYTES": str(GATEWAY_MAX_UPLOAD_BYTES),
        # Artifacts, in the session's object store; a deleted job's go within a second.
        **seaweed_server.env(),
        "ARTIFACT_SCAN_S": "0.5",
    }
    running = Stack(tmp_root / "stack", extra_env=env).start()
    yield running
    running.stop()


@pytest.fixture
async def alice(stack: Stack) -> AsyncIterator[JobsClient]:
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("alice")) as c:
        yield c


@pytest.fixture
async def bob(stack: Stack) -> AsyncIterator[JobsClient]:
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("bob")) as c:
        yield c


#: The model API key of the openai stack: it must reach the model server and no log line.
OPENAI_API_KEY = "sk-e2e-7d2b6c0f-never-log-me"


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeServer]:
    """The fake chat-completions server (``tests/fake_openai.py``); tests script it."""
    with fake_openai.running() as server:
        yield server


@pytest.fixture(scope="session")
def openai_stack(tmp_root: Path, fake_server: FakeServer) -> Iterator[Stack]:
    """A stack whose workers write through ``AI_PROVIDER=openai`` against the fake server,
    logging at DEBUG so tests can check that no key or prompt reaches a log."""
    env = {
        "AI_PROVIDER": "openai",
        "OPENAI_BASE_URL": f"{fake_server.url}/v1",
        "OPENAI_API_KEY": OPENAI_API_KEY,
        "AI_MODEL": "fake-model-1",
        "AI_STALL_TIMEOUT_S": "5",
        "LOG_LEVEL": "DEBUG",
    }
    running = Stack(tmp_root / "openai-stack", extra_env=env).start()
    yield running
    running.stop()
