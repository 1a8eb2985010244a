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

from jobctl.client import JobsClient
from jobkit.devstack import Stack

ISSUER = "https://id.jobs.test"
AUDIENCE = "jobs-api"
RSA_KID = "e2e-rsa-1"
LIMITS = {"RATE_LIMIT_PER_MINUTE": 40, "MAX_RUNNING_JOBS_PER_USER": 20, "MAX_WATCHES_PER_USER": 5}


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def stack(
    tmp_root: Path, request: pytest.FixtureRequest, rsa_key: rsa.RSAPrivateKey
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
    }
    running = Stack(tmp_root / "stack", extra_env=env).start()
    yield running
    running.stop()
    if request.session.testsfailed:
        # CI keeps only the console: show what the services said.
        for service in running.services.values():
            lines = service.log_path.read_text(encoding="utf-8").splitlines()
            print(f"\n--- last lines of {service.name} ---", *lines[-40:], sep="\n")


@pytest.fixture
async def alice(stack: Stack) -> AsyncIterator[JobsClient]:
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("alice")) as c:
        yield c


@pytest.fixture
async def bob(stack: Stack) -> AsyncIterator[JobsClient]:
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("bob")) as c:
        yield c
