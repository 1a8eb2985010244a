"""An asyncio client over the generated jobs.v1 stubs.

Bearer auth on every call, default deadlines, retries of ``UNAVAILABLE`` for calls that are
safe to repeat, and ``watch()``: an async iterator over a job's events that reconnects
after a broken stream and resumes after the last sequence it yielded, so a caller never
misses or repeats an event (``jobctl.transport``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from jobctl.transport import (
    BulkFilter,
    Client,
    Scheduling,
    Transient,
    call_with_retries,
    create_request,
    fork_request,
    submit_input_request,
)
from jobkit.convert import upload_requests
from jobkit.gen.jobs.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    jobs_pb2,
    notifier_service_pb2,
    notifier_service_pb2_grpc,
)

Request = TypeVar("Request")
Reply = TypeVar("Reply")
#: Where a status's rich details travel (a serialized ``google.rpc.Status``).
_DETAILS_KEY = "grpc-status-details-bin"


def field_violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of the ``google.rpc.BadRequest`` an INVALID_ARGUMENT
    carries in its trailing metadata, if any. That metadata is a ``grpc.aio.Metadata`` (or
    ``None``), whatever grpc's type stubs declare."""
    trailing: object = error.trailing_metadata()
    if not isinstance(trailing, grpc.aio.Metadata):
        return []
    found: list[tuple[str, str]] = []
    for key, value in trailing:
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            continue  # a malformed trailer loses only the details
        for detail in status.details:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                found += [(v.field, v.description) for v in bad.field_violations]
    return found


def _codes(*codes: grpc.StatusCode) -> Transient:
    return lambda error: isinstance(error, grpc.aio.AioRpcError) and error.code() in codes


_RETRYABLE = _codes(grpc.StatusCode.UNAVAILABLE)
#: What breaks a WatchJob stream in passing: a replica going away, a reset connection.
_STREAM_BROKEN = _codes(
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
)


class JobsClient(Client):
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

    async def close(self) -> None:
        await self._api_channel.close(None)
        await self._notifier_channel.close(None)

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Request, Reply],
        request: Request,
        *,
        retry: bool = True,
    ) -> Reply:
        return await call_with_retries(
            lambda: method(request, metadata=self._metadata, timeout=self._timeout_s),
            retries=self._retries if retry else 0,
            transient=_RETRYABLE,
        )

    async def create_job(
        self,
        job_type: str,
        input: Mapping[str, Any],
        *,
        idempotency_key: str = "",
        scheduling: Scheduling | None = None,
        webhook_url: str = "",
    ) -> jobs_pb2.Job:
        """Create a job. Retried on UNAVAILABLE only with an idempotency key (else once)."""
        request = create_request(job_type, input, idempotency_key, scheduling, webhook_url)
        return await self._call(self.jobs.CreateJob, request, retry=bool(idempotency_key))

    async def get_job(self, job_id: str) -> jobs_pb2.Job:
        return await self._call(self.jobs.GetJob, job_service_pb2.GetJobRequest(job_id=job_id))

    async def list_jobs(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        status: jobs_pb2.JobStatus | str = jobs_pb2.JOB_STATUS_UNSPECIFIED,
        job_type: str = "",
        parent_job_id: str = "",
    ) -> job_service_pb2.ListJobsResponse:
        """One page of the caller's jobs; ``status`` is a JobStatus, or its name;
        ``parent_job_id``: only the jobs that job's step created."""
        return await self._call(
            self.jobs.ListJobs,
            job_service_pb2.ListJobsRequest(
                page_size=page_size,
                page_token=page_token,
                status=status,
                type=job_type,
                parent_job_id=parent_job_id,
            ),
        )

    async def cancel_job(self, job_id: str) -> jobs_pb2.Job:
        return await self._call(
            self.jobs.CancelJob, job_service_pb2.CancelJobRequest(job_id=job_id)
        )

    async def retry_job(self, job_id: str) -> jobs_pb2.Job:
        return await self._call(self.jobs.RetryJob, job_service_pb2.RetryJobRequest(job_id=job_id))

    async def fork_job(
        self,
        job_id: str,
        from_step: str = "",
        overrides: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str = "",
    ) -> jobs_pb2.Job:
        """A new job from ``job_id``: its checkpoints before ``from_step`` reused, its input
        with ``overrides`` over it. Retried only with an ``idempotency_key``: without one,
        a repeat would fork twice."""
        request = fork_request(job_id, from_step, overrides or {}, idempotency_key)
        return await self._call(self.jobs.ForkJob, request, retry=bool(idempotency_key))

    async def submit_input(self, job_id: str, step: str, answer: Mapping[str, Any]) -> jobs_pb2.Job:
        """Answer ``step`` of a job waiting for input. Never retried: a repeat of an answer
        that did arrive would only be told the step waits no more."""
        request = submit_input_request(job_id, step, answer)
        return await self._call(self.jobs.SubmitInput, request, retry=False)

    async def bulk_retry(
        self, where: BulkFilter, *, limit: int = 0, page_token: str = ""
    ) -> job_service_pb2.BulkRetryJobsResponse:
        """One page of a bulk retry (operators). Retried on UNAVAILABLE: taken again from
        the same token, the jobs already retried no longer match."""
        request = job_service_pb2.BulkRetryJobsRequest(
            filter=where.proto(), limit=limit, page_token=page_token
        )
        return await self._call(self.jobs.BulkRetryJobs, request)

    async def bulk_cancel(
        self, where: BulkFilter, *, limit: int = 0, page_token: str = ""
    ) -> job_service_pb2.BulkCancelJobsResponse:
        """One page of a bulk cancel (operators)."""
        request = job_service_pb2.BulkCancelJobsRequest(
            filter=where.proto(), limit=limit, page_token=page_token
        )
        return await self._call(self.jobs.BulkCancelJobs, request)

    async def delete_job(self, job_id: str) -> None:
        await self._call(self.jobs.DeleteJob, job_service_pb2.DeleteJobRequest(job_id=job_id))

    async def list_job_types(self) -> list[jobs_pb2.JobType]:
        response = await self._call(self.jobs.ListJobTypes, job_service_pb2.ListJobTypesRequest())
        return list(response.job_types)

    async def create_watch_token(self, job_id: str) -> job_service_pb2.CreateWatchTokenResponse:
        """A short-lived token that lets whoever holds it watch this one job's events."""
        return await self._call(
            self.jobs.CreateWatchToken, job_service_pb2.CreateWatchTokenRequest(job_id=job_id)
        )

    async def list_webhook_deliveries(self, job_id: str) -> list[jobs_pb2.WebhookDelivery]:
        """The job's webhook deliveries (its ``webhook_url``), oldest first."""
        response = await self._call(
            self.jobs.ListWebhookDeliveries,
            job_service_pb2.ListWebhookDeliveriesRequest(job_id=job_id),
        )
        return list(response.deliveries)

    async def upload(
        self, pieces: AsyncIterator[bytes], content_type: str
    ) -> job_service_pb2.Upload:
        """Store a file for later jobs (bulk_import's ``upload_id``), streamed as read."""
        upload: job_service_pb2.Upload = await self.jobs.CreateUpload(
            upload_requests(pieces, content_type), metadata=self._metadata
        )
        return upload

    async def download(
        self, job_id: str, name: str
    ) -> tuple[jobs_pb2.Artifact, AsyncIterator[bytes]]:
        """One artifact of a job: what it is (from the stream's first message), and its
        bytes as they arrive. Errors before the first byte raise here."""
        call = self.jobs.DownloadArtifact(
            job_service_pb2.DownloadArtifactRequest(job_id=job_id, name=name),
            metadata=self._metadata,
        )
        try:
            first = await anext(aiter(call))
        except StopAsyncIteration:
            raise ConnectionError("the download ended before it began") from None
        artifact = jobs_pb2.Artifact()
        if not first.extensions or not first.extensions[0].Unpack(artifact):
            call.cancel()
            raise ConnectionError("the download named no artifact")

        async def pieces() -> AsyncIterator[bytes]:
            try:
                if first.data:
                    yield first.data
                async for piece in call:
                    yield piece.data
            finally:
                call.cancel()

        return artifact, pieces()

    async def _stream(self, job_id: str, after: int) -> AsyncGenerator[jobs_pb2.JobEvent, None]:
        """One WatchJob call; it ends empty when the job had ended with nothing after."""
        call = self.notifier.WatchJob(
            notifier_service_pb2.WatchJobRequest(job_id=job_id, after_sequence=after),
            metadata=self._metadata,
        )
        try:
            async for event in call:
                yield event
        finally:
            call.cancel()

    def _stream_broken(self, error: Exception) -> bool:
        return _STREAM_BROKEN(error)
