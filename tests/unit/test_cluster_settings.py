"""What the services make of clustered settings: every NATS server of NATS_URL, which
JetStream API failures are an election passing, and a multi-host DATABASE_URL."""

from __future__ import annotations

import asyncio

import pytest
from asyncpg.connect_utils import SessionAttribute
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import (
    APIError,
    BadRequestError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)

from jobkit import bus, db


def test_nats_url_lists_every_server() -> None:
    assert bus.server_urls("nats://127.0.0.1:4222") == ["nats://127.0.0.1:4222"]
    assert bus.server_urls(" nats://a:4222, nats://b:4222,,nats://c:4222 ") == [
        "nats://a:4222",
        "nats://b:4222",
        "nats://c:4222",
    ]
    with pytest.raises(ValueError, match="no server"):
        bus.server_urls(" , ")


@pytest.mark.parametrize(
    "error",
    [
        NatsTimeoutError(),
        NoRespondersError(),
        NoStreamResponseError(),
        ServiceUnavailableError(code=503, err_code=10008),
        APIError(code=500, err_code=10118, description="stream is offline"),
        APIError(code=503, err_code=10009),
        APIError(code=500, err_code=10005),
    ],
)
def test_an_election_is_transient(error: Exception) -> None:
    assert bus.is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        NotFoundError(code=404, err_code=10059),
        BadRequestError(code=400, err_code=10058),
        APIError(code=500, err_code=10012),
        ValueError("no"),
    ],
)
def test_other_errors_stand(error: Exception) -> None:
    assert not bus.is_transient(error)


async def test_a_call_is_retried_through_an_election_and_then_succeeds() -> None:
    answers: list[Exception | str] = [NoRespondersError(), NatsTimeoutError(), "ok"]

    async def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await bus.retry_transient(call, "test") == "ok"
    assert not answers


async def test_a_call_gives_up_after_its_budget_or_at_once_on_a_real_error() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise NoRespondersError()

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(NoRespondersError):
        await bus.retry_transient(down, "test", within_s=0.5)
    assert 1 < calls < 10
    assert loop.time() - started < 1.5

    async def refused() -> None:
        raise BadRequestError(code=400, err_code=10058)

    with pytest.raises(BadRequestError):
        await bus.retry_transient(refused, "test")


def test_database_hosts() -> None:
    one = "postgresql://postgres@127.0.0.1:5432/jobs"
    two = "postgresql://u:p@a:5432,b:5433/jobs?sslmode=require"
    assert db.hosts(one) == ["127.0.0.1:5432"]
    assert db.hosts(two) == ["a:5432", "b:5433"]


def test_several_hosts_connect_to_the_primary_only() -> None:
    assert db.session_attrs("postgresql://postgres@127.0.0.1:5432/jobs") is None
    assert db.session_attrs("postgresql://u@a:1,b:2/jobs") == SessionAttribute.read_write
    # What the URL says stands.
    assert db.session_attrs("postgresql://u@a:1,b:2/jobs?target_session_attrs=any") is None


def test_a_standby_or_no_primary_is_unavailable() -> None:
    import asyncpg

    assert db.is_unavailable(asyncpg.exceptions.TargetServerAttributeNotMatched("x"))
    assert db.is_unavailable(asyncpg.exceptions.ReadOnlySQLTransactionError("x"))
    assert db.is_unavailable(asyncpg.exceptions.TransactionResolutionUnknownError("x"))
    assert not db.is_unavailable(asyncpg.exceptions.UniqueViolationError("x"))
