"""An asyncio client over the generated jobs.v1 stubs.

Bearer auth on every call, default deadlines, retries of ``UNAVAILABLE`` for calls that are
safe to repeat, and ``watch()``: an async iterator over a job's events that reconnects
after a broken stream and resumes after the last sequence it yielded, so a caller never
misses or repeats an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import struct_pb2

from jobkit.gen.jobs.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    jobs_pb2,
    notifier_service_pb2,
    notifier_service_pb2_grpc,
)

TERMINAL_EVENT_TYPES = frozenset(
    {
        jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED,
        jobs_pb2.JOB_EVENT_TYPE_FAILED,
        jobs_pb2.JOB_EVENT_TYPE_CANCELLED,
    }
)
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})


class JobsClient:
    def __init__(
        self,
        api_addr: str,
        notifier_addr: str,
        token: str,
        *,
        timeout_s: float = 10.0,
        retries: int = 4,
    ) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout_s = timeout_s
        self._retries = retries
        self._api_channel = grpc.aio.insecure_channel(api_addr)
        self._notifier_channel = grpc.aio.insecure_channel(notifier_addr)
        self.jobs = job_service_pb2_grpc.JobServiceStub(self._api_channel)
        self.notifier = notifier_service_pb2_grpc.NotifierServiceStub(self._notifier_channel)

    async def __aenter__(self) -> JobsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._api_channel.close(None)
        await self._notifier_channel.close(None)

    async def _call(self, method: Any, request: Any) -> Any:
        delay = 0.2
        for attempt in range(self._retries + 1):
            try:
                return await method(request, metadata=self._metadata, timeout=self._timeout_s)
            except grpc.aio.AioRpcError as error:
                if error.code() not in _RETRYABLE or attempt == self._retries:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")

    async def create_job(
        self, job_type: str, input: Mapping[str, Any], *, idempotency_key: str = ""
    ) -> jobs_pb2.Job:
        """Create a job. Retried on UNAVAILABLE only with an idempotency key (else once)."""
        payload = struct_pb2.Struct()
        payload.update(dict(input))
        request = job_service_pb2.CreateJobRequest(
            type=job_type, input=payload, idempotency_key=idempotency_key
        )
        if idempotency_key:
            job: jobs_pb2.Job = await self._call(self.jobs.CreateJob, request)
            return job
        created: jobs_pb2.Job = await self.jobs.CreateJob(
            request, metadata=self._metadata, timeout=self._timeout_s
        )
        return created

    async def get_job(self, job_id: str) -> jobs_pb2.Job:
        job: jobs_pb2.Job = await self._call(
            self.jobs.GetJob, job_service_pb2.GetJobRequest(job_id=job_id)
        )
        return job

    async def list_jobs(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        status: Any = jobs_pb2.JOB_STATUS_UNSPECIFIED,
        job_type: str = "",
    ) -> job_service_pb2.ListJobsResponse:
        response: job_service_pb2.ListJobsResponse = await self._call(
            self.jobs.ListJobs,
            job_service_pb2.ListJobsRequest(
                page_size=page_size, page_token=page_token, status=status, type=job_type
            ),
        )
        return response

    async def cancel_job(self, job_id: str) -> jobs_pb2.Job:
        job: jobs_pb2.Job = await self._call(
            self.jobs.CancelJob, job_service_pb2.CancelJobRequest(job_id=job_id)
        )
        return job

    async def retry_job(self, job_id: str) -> jobs_pb2.Job:
        job: jobs_pb2.Job = await self._call(
            self.jobs.RetryJob, job_service_pb2.RetryJobRequest(job_id=job_id)
        )
        return job

    async def delete_job(self, job_id: str) -> None:
        await self._call(self.jobs.DeleteJob, job_service_pb2.DeleteJobRequest(job_id=job_id))

    async def list_job_types(self) -> list[jobs_pb2.JobType]:
        response: job_service_pb2.ListJobTypesResponse = await self._call(
            self.jobs.ListJobTypes, job_service_pb2.ListJobTypesRequest()
        )
        return list(response.job_types)

    async def create_watch_token(self, job_id: str) -> job_service_pb2.CreateWatchTokenResponse:
        """A short-lived token that lets whoever holds it watch this one job's events."""
        response: job_service_pb2.CreateWatchTokenResponse = await self._call(
            self.jobs.CreateWatchToken, job_service_pb2.CreateWatchTokenRequest(job_id=job_id)
        )
        return response

    async def watch(
        self, job_id: str, after_sequence: int = 0, *, max_reconnects: int = 30
    ) -> AsyncIterator[jobs_pb2.JobEvent]:
        """Yield the job's events after ``after_sequence`` until its terminal event."""
        last = after_sequence
        failures = 0
        while True:
            call = self.notifier.WatchJob(
                notifier_service_pb2.WatchJobRequest(job_id=job_id, after_sequence=last),
                metadata=self._metadata,
            )
            received = 0
            try:
                async for event in call:
                    failures = 0
                    received += 1
                    if event.sequence <= last:
                        continue
                    last = event.sequence
                    yield event
                    if event.type in TERMINAL_EVENT_TYPES:
                        return
                if received == 0:
                    return  # the job had ended, with nothing after `last`
                # Closed without a terminal event (a replica going away): resume.
                failures += 1
                if failures > max_reconnects:
                    raise ConnectionError("the event stream keeps closing early")
            except grpc.aio.AioRpcError as error:
                if (
                    error.code()
                    not in (
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.INTERNAL,
                        grpc.StatusCode.CANCELLED,
                        grpc.StatusCode.UNKNOWN,
                    )
                    or failures >= max_reconnects
                ):
                    raise
                failures += 1
                await asyncio.sleep(min(0.2 * 2 ** min(failures, 4), 3.0))
            finally:
                call.cancel()
