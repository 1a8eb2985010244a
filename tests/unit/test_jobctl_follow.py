"""jobctl's one watch loop (``follow``) and retried calls, with scripted streams in place
of gRPC and the gateway; and the HTTP client's stream opener against scripted gateway
answers, for what its 204, an empty 200 and its errors mean to that loop."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Sequence

import grpc
import httpx
import pytest
from google.protobuf.json_format import MessageToDict

from jobctl import transport
from jobctl.http_client import GatewayError, HttpJobsClient
from jobctl.transport import call_with_retries, follow
from jobkit.gen.jobs.v1 import jobs_pb2 as E


class Transient(Exception):
    pass


class Fatal(Exception):
    pass


def event(sequence: int, kind: E.JobEventType = E.JOB_EVENT_TYPE_PROGRESS) -> E.JobEvent:
    return E.JobEvent(sequence=sequence, type=kind)


DONE = E.JOB_EVENT_TYPE_SUCCEEDED
#: One stream: its events, then how it ends (``None``: cleanly).
Script = tuple[Sequence[E.JobEvent], Exception | None]


class Streams:
    """Opens the scripted streams in turn, recording each one's ``after`` and closing."""

    def __init__(self, *scripts: Script) -> None:
        self._scripts = list(scripts)
        self.opened_after: list[int] = []
        self.closed = 0

    async def open(self, after: int) -> AsyncGenerator[E.JobEvent, None]:
        self.opened_after.append(after)
        events, end = self._scripts.pop(0)
        try:
            for item in events:
                yield item
            if end is not None:
                raise end
        finally:
            self.closed += 1


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The failure counts the loops back off for, without waiting."""
    seen: list[int] = []

    def backoff_s(failures: int) -> float:
        seen.append(failures)
        return 0.0

    monkeypatch.setattr(transport, "backoff_s", backoff_s)
    return seen


def is_transient(error: Exception) -> bool:
    return isinstance(error, Transient)


async def run(streams: Streams, after: int = 0, max_reconnects: int = 30) -> list[int]:
    watch = follow(streams.open, after, transient=is_transient, max_reconnects=max_reconnects)
    return [e.sequence async for e in watch]


async def test_resumes_after_the_last_event_with_a_pause_only_after_an_error(
    pauses: list[int],
) -> None:
    streams = Streams(
        ([event(1), event(2)], None),  # closed early: reopened at once
        ([event(2), event(3)], Transient()),  # a repeat is skipped; broken: backoff
        ([], Transient()),  # broken again before any event: a longer backoff
        ([event(4), event(5, DONE), event(6)], None),  # nothing after the terminal one
    )
    assert await run(streams) == [1, 2, 3, 4, 5]
    assert streams.opened_after == [0, 2, 3, 3]
    assert pauses == [1, 2]
    assert streams.closed == 4


async def test_a_stream_that_ends_empty_means_the_job_is_over(pauses: list[int]) -> None:
    streams = Streams(([event(8)], None), ([], None))
    assert await run(streams, after=7) == [8]
    assert streams.opened_after == [7, 8]


async def test_an_error_that_is_not_transient_ends_the_watch_at_once(pauses: list[int]) -> None:
    streams = Streams(([event(1)], Fatal()))
    with pytest.raises(Fatal):
        await run(streams)
    assert pauses == []


async def test_too_many_failures_in_a_row_end_the_watch(pauses: list[int]) -> None:
    broken = Streams(*[([], Transient()) for _ in range(4)])
    with pytest.raises(Transient):
        await run(broken, max_reconnects=3)
    assert pauses == [1, 2, 3]
    # Only a new event starts the count again: repeats of old ones are no progress.
    closing = Streams(*[([event(1)], None) for _ in range(4)])
    with pytest.raises(ConnectionError, match="keeps closing early"):
        await run(closing, max_reconnects=3)
    assert closing.opened_after == [0, 1, 1, 1]
    assert pauses == [1, 2, 3]  # a clean close is reopened at once
    progressing = Streams(*[([event(n)], None) for n in range(1, 10)], ([event(10, DONE)], None))
    assert await run(progressing, max_reconnects=3) == list(range(1, 11))


async def test_a_caller_that_stops_early_closes_the_open_stream(pauses: list[int]) -> None:
    streams = Streams(([event(1), event(2)], None))
    watch = follow(streams.open, 0, transient=is_transient, max_reconnects=3)
    async for _ in watch:
        break
    await watch.aclose()
    assert streams.closed == 1


async def test_a_call_is_retried_after_transient_failures_only(pauses: list[int]) -> None:
    answers: list[Exception | str] = [Transient(), Transient(), "ok"]

    async def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await call_with_retries(call, retries=4, transient=is_transient) == "ok"
    assert pauses == [0, 1]
    answers[:] = [Transient(), "ok"]
    with pytest.raises(Transient):
        await call_with_retries(call, retries=0, transient=is_transient)
    answers[:] = [Fatal(), "ok"]
    with pytest.raises(Fatal):
        await call_with_retries(call, retries=4, transient=is_transient)


def test_the_backoff_doubles_from_a_fifth_of_a_second_to_three() -> None:
    assert [transport.backoff_s(n) for n in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.0, 3.0, 3.0]


def sse(*events: E.JobEvent) -> bytes:
    lines = [f"id: {e.sequence}\ndata: {json.dumps(MessageToDict(e))}\n\n" for e in events]
    return ("".join(lines) + 'event: end\ndata: {"sequence": 1}\n\n').encode()


def gateway(answer: Callable[[httpx.Request], httpx.Response]) -> HttpJobsClient:
    return HttpJobsClient("http://gateway", "token", transport=httpx.MockTransport(answer))


async def opened(client: HttpJobsClient, after: int = 0) -> list[int]:
    return [e.sequence async for e in client._stream("j", after)]


async def test_the_gateways_answers_as_the_watch_loop_reads_them() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=sse(event(4), event(5, DONE)))

    async with gateway(answer) as client:
        assert await opened(client, after=3) == [4, 5]
    assert seen[0].url.path == "/v1/jobs/j/events"
    assert seen[0].url.params["after_sequence"] == "3"
    assert seen[0].headers["authorization"] == "Bearer token"

    async with gateway(lambda _: httpx.Response(204)) as client:
        assert await opened(client) == []  # over: nothing after 0

    async with gateway(lambda _: httpx.Response(200, content=b": keepalive\n\n")) as client:
        with pytest.raises(GatewayError) as empty:
            await opened(client)  # cut short, not over
    assert empty.value.code() == grpc.StatusCode.UNAVAILABLE

    busy = {"code": 14, "message": "notifier unavailable"}
    async with gateway(lambda _: httpx.Response(503, json=busy)) as client:
        with pytest.raises(GatewayError) as unavailable:
            await opened(client)
    assert unavailable.value.details() == "notifier unavailable"

    missing = {"code": 5, "message": "job not found"}
    async with gateway(lambda _: httpx.Response(404, json=missing)) as client:
        with pytest.raises(GatewayError) as not_found:
            await opened(client)
    assert not_found.value.code() == grpc.StatusCode.NOT_FOUND

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with gateway(unreachable) as client:
        with pytest.raises(GatewayError) as refused:
            await opened(client)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_http_watch_rides_out_an_unavailable_gateway(pauses: list[int]) -> None:
    answers = [
        httpx.Response(200, content=sse(event(1))),
        httpx.Response(503, json={"code": 14, "message": "busy"}),
        httpx.Response(200, content=sse(event(2, DONE))),
    ]
    asked_after: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked_after.append(request.url.params["after_sequence"])
        return answers.pop(0)

    async with gateway(answer) as client:
        assert [e.sequence async for e in client.watch("j")] == [1, 2]
    assert asked_after == ["0", "1", "1"]
    assert pauses == [2]  # the early close counted as the first failure
