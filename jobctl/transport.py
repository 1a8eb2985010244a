"""What jobctl's two transports share. gRPC (``client.py``) and the HTTP gateway
(``http_client.py``) differ only in how a call or an event stream is opened and in which
failures are worth another try; the rules around those are here, once: the backoff,
retried calls, and following a job's events across reconnects.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

from google.protobuf import struct_pb2

from jobkit.gen.jobs.v1 import job_service_pb2, jobs_pb2

T = TypeVar("T")

TERMINAL_EVENT_TYPES = frozenset(
    {
        jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED,
        jobs_pb2.JOB_EVENT_TYPE_FAILED,
        jobs_pb2.JOB_EVENT_TYPE_CANCELLED,
    }
)

#: Opens one event stream of a job after a sequence. A stream that ends without a single
#: event says the job is over with nothing after that sequence; one that cannot say so
#: (it broke, or was cut short) must fail instead.
OpenStream = Callable[[int], AsyncGenerator[jobs_pb2.JobEvent, None]]
#: Whether a failure is worth another try.
Transient = Callable[[Exception], bool]


@dataclass(frozen=True, slots=True)
class Scheduling:
    """CreateJob's scheduling fields, as ``submit`` takes them (all optional)."""

    priority: int = 0
    not_before: datetime | None = None
    deadline_s: float | None = None
    concurrency_key: str = ""
    concurrency_limit: int = 0


def create_request(
    job_type: str,
    input: Mapping[str, Any],
    idempotency_key: str = "",
    scheduling: Scheduling | None = None,
    webhook_url: str = "",
) -> job_service_pb2.CreateJobRequest:
    """The CreateJob request both transports send (the gateway takes its JSON)."""
    payload = struct_pb2.Struct()
    payload.update(dict(input))
    request = job_service_pb2.CreateJobRequest(
        type=job_type, input=payload, idempotency_key=idempotency_key, webhook_url=webhook_url
    )
    if scheduling is not None:
        request.priority = scheduling.priority
        request.concurrency_key = scheduling.concurrency_key
        request.concurrency_limit = scheduling.concurrency_limit
        if scheduling.not_before is not None:
            request.not_before.FromDatetime(scheduling.not_before)
        if scheduling.deadline_s is not None:
            request.deadline.FromTimedelta(timedelta(seconds=scheduling.deadline_s))
    return request


def fork_request(
    job_id: str, from_step: str, overrides: Mapping[str, Any], idempotency_key: str = ""
) -> job_service_pb2.ForkJobRequest:
    """The ForkJob request both transports send."""
    payload = struct_pb2.Struct()
    payload.update(dict(overrides))
    return job_service_pb2.ForkJobRequest(
        job_id=job_id,
        from_step=from_step,
        input_overrides=payload,
        idempotency_key=idempotency_key,
    )


def submit_input_request(
    job_id: str, step: str, answer: Mapping[str, Any]
) -> job_service_pb2.SubmitInputRequest:
    """The SubmitInput request both transports send: ``answer`` for the waiting ``step``."""
    payload = struct_pb2.Struct()
    payload.update(dict(answer))
    return job_service_pb2.SubmitInputRequest(job_id=job_id, step=step, input=payload)


@dataclass(frozen=True, slots=True)
class BulkFilter:
    """Which jobs ``jobctl bulk`` takes (all optional; ``status`` a JobStatus name)."""

    job_type: str = ""
    status: str = ""
    owner: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None

    def proto(self) -> job_service_pb2.JobFilter:
        message = job_service_pb2.JobFilter(
            type=self.job_type, status=self.status or "JOB_STATUS_UNSPECIFIED", owner=self.owner
        )
        if self.created_after is not None:
            message.created_after.FromDatetime(self.created_after)
        if self.created_before is not None:
            message.created_before.FromDatetime(self.created_before)
        return message


def backoff_s(failures: int) -> float:
    """Pause number ``failures`` (from 0) of a backoff: 0.2 s, doubling up to 3 s."""
    return min(0.2 * 2.0 ** min(failures, 4), 3.0)


async def call_with_retries(
    call: Callable[[], Awaitable[T]], *, retries: int, transient: Transient
) -> T:
    """``call()``, tried again after a transient failure, ``retries`` more times at most."""
    for attempt in range(retries):
        try:
            return await call()
        except Exception as error:
            if not transient(error):
                raise
        await asyncio.sleep(backoff_s(attempt))
    return await call()


async def follow(
    open_stream: OpenStream, after_sequence: int, *, transient: Transient, max_reconnects: int
) -> AsyncGenerator[jobs_pb2.JobEvent, None]:
    """A job's events after ``after_sequence`` until its terminal one, across as many
    streams as it takes: each opened after the last sequence yielded, so a caller never
    misses or repeats an event.

    A stream that closes early (a replica going away) is reopened at once; one that fails
    transiently, after a backoff. More than ``max_reconnects`` of either in a row, with no
    new event between them, end it: with the last error, or ``ConnectionError`` if the
    streams kept closing early.
    """
    last = after_sequence
    failures = 0
    while True:
        received = 0
        try:
            async with aclosing(open_stream(last)) as stream:
                async for event in stream:
                    received += 1
                    if event.sequence <= last:
                        continue
                    failures = 0
                    last = event.sequence
                    yield event
                    if event.type in TERMINAL_EVENT_TYPES:
                        return
        except Exception as error:
            if not transient(error) or failures >= max_reconnects:
                raise
            failures += 1
            await asyncio.sleep(backoff_s(failures))
            continue
        if received == 0:
            return  # the job had ended, with nothing after `last`
        failures += 1
        if failures > max_reconnects:
            raise ConnectionError("the event stream keeps closing early")


class Client(abc.ABC):
    """What the two clients share: ``watch()`` over their event streams, and ``async with``
    closing their connections."""

    def watch(
        self, job_id: str, after_sequence: int = 0, *, max_reconnects: int = 30
    ) -> AsyncGenerator[jobs_pb2.JobEvent, None]:
        """Yield the job's events after ``after_sequence`` until its terminal event."""
        return follow(
            lambda after: self._stream(job_id, after),
            after_sequence,
            transient=self._stream_broken,
            max_reconnects=max_reconnects,
        )

    @abc.abstractmethod
    def _stream(self, job_id: str, after: int) -> AsyncGenerator[jobs_pb2.JobEvent, None]:
        """One event stream of the job after ``after`` (see ``OpenStream``)."""

    @abc.abstractmethod
    def _stream_broken(self, error: Exception) -> bool:
        """Whether the stream failed in passing, so that another one is worth opening."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connections."""
