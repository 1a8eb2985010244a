"""The same calls as ``JobsClient``, over the HTTP gateway: for networks where only HTTPS
reaches the system (an Ingress, a corporate proxy), and as a reference client of the
gateway's contract. Messages stay the protos: JSON in and out through the proto3 mapping.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import grpc
import httpx
from google.protobuf import empty_pb2, json_format
from google.protobuf.message import Message

from jobctl.transport import (
    BulkFilter,
    Client,
    Scheduling,
    call_with_retries,
    create_request,
    fork_request,
    submit_input_request,
)
from jobkit.gen.jobs.v1 import job_service_pb2, jobs_pb2

M = TypeVar("M", bound=Message)
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class GatewayError(Exception):
    """A call the gateway refused: the gRPC status it carries, like ``AioRpcError``."""

    def __init__(self, status: int, body: object) -> None:
        document = body if isinstance(body, dict) else {}
        self._code = _CODES.get(document.get("code", -1), grpc.StatusCode.UNKNOWN)
        self._details = str(document.get("message") or f"HTTP {status}")
        self._violations = _field_violations(document.get("details"))
        self.http_status = status
        super().__init__(f"{self._code.name}: {self._details}")

    @classmethod
    def unavailable(cls, message: str) -> GatewayError:
        return cls(503, {"code": grpc.StatusCode.UNAVAILABLE.value[0], "message": message})

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def field_violations(self) -> list[tuple[str, str]]:
        """The ``google.rpc.BadRequest`` detail's (field, description) pairs, if any."""
        return list(self._violations)


def _field_violations(details: object) -> tuple[tuple[str, str], ...]:
    """The field violations of a ``google.rpc.Status`` body's ``details`` (JSON)."""
    found: list[tuple[str, str]] = []
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith(
            "google.rpc.BadRequest"
        ):
            continue
        for violation in detail.get("fieldViolations") or ():
            if isinstance(violation, dict):
                found.append(
                    (str(violation.get("field", "")), str(violation.get("description", "")))
                )
    return tuple(found)


def _unavailable(error: Exception) -> bool:
    return isinstance(error, GatewayError) and error.code() == grpc.StatusCode.UNAVAILABLE


class HttpJobsClient(Client):
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 10.0,
        retries: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )
        self._retries = retries

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        reply: M,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
        retry: bool = True,
    ) -> M:
        async def once() -> M:
            try:
                response = await self._http.request(method, path, json=body, params=params)
            except httpx.TransportError:
                raise GatewayError.unavailable("gateway unreachable") from None
            if response.status_code != 200:
                raise GatewayError(response.status_code, _json_or_none(response))
            return json_format.ParseDict(response.json(), reply, ignore_unknown_fields=True)

        return await call_with_retries(
            once, retries=self._retries if retry else 0, transient=_unavailable
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
        body = json_format.MessageToDict(request)
        return await self._call(
            "POST", "/v1/jobs", jobs_pb2.Job(), body=body, retry=bool(idempotency_key)
        )

    async def get_job(self, job_id: str) -> jobs_pb2.Job:
        return await self._call("GET", f"/v1/jobs/{job_id}", jobs_pb2.Job())

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
        params: dict[str, str | int] = {"pageSize": page_size}
        if page_token:
            params["pageToken"] = page_token
        if status:
            params["status"] = (
                status if isinstance(status, str) else jobs_pb2.JobStatus.Name(status)
            )
        if job_type:
            params["type"] = job_type
        if parent_job_id:
            params["parentJobId"] = parent_job_id
        return await self._call(
            "GET", "/v1/jobs", job_service_pb2.ListJobsResponse(), params=params
        )

    async def cancel_job(self, job_id: str) -> jobs_pb2.Job:
        return await self._call("POST", f"/v1/jobs/{job_id}:cancel", jobs_pb2.Job(), body={})

    async def retry_job(self, job_id: str) -> jobs_pb2.Job:
        return await self._call("POST", f"/v1/jobs/{job_id}:retry", jobs_pb2.Job(), body={})

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
        body = json_format.MessageToDict(request)
        body.pop("jobId", None)
        return await self._call(
            "POST",
            f"/v1/jobs/{job_id}:fork",
            jobs_pb2.Job(),
            body=body,
            retry=bool(idempotency_key),
        )

    async def submit_input(self, job_id: str, step: str, answer: Mapping[str, Any]) -> jobs_pb2.Job:
        """Answer ``step`` of a job waiting for input. Never retried: a repeat of an answer
        that did arrive would only be told the step waits no more."""
        body = json_format.MessageToDict(submit_input_request(job_id, step, answer))
        body.pop("jobId", None)
        return await self._call(
            "POST", f"/v1/jobs/{job_id}:submitInput", jobs_pb2.Job(), body=body, retry=False
        )

    async def bulk_retry(
        self, where: BulkFilter, *, limit: int = 0, page_token: str = ""
    ) -> job_service_pb2.BulkRetryJobsResponse:
        """One page of a bulk retry (operators)."""
        body = json_format.MessageToDict(
            job_service_pb2.BulkRetryJobsRequest(
                filter=where.proto(), limit=limit, page_token=page_token
            )
        )
        return await self._call(
            "POST", "/v1/jobs:bulkRetry", job_service_pb2.BulkRetryJobsResponse(), body=body
        )

    async def bulk_cancel(
        self, where: BulkFilter, *, limit: int = 0, page_token: str = ""
    ) -> job_service_pb2.BulkCancelJobsResponse:
        """One page of a bulk cancel (operators)."""
        body = json_format.MessageToDict(
            job_service_pb2.BulkCancelJobsRequest(
                filter=where.proto(), limit=limit, page_token=page_token
            )
        )
        return await self._call(
            "POST", "/v1/jobs:bulkCancel", job_service_pb2.BulkCancelJobsResponse(), body=body
        )

    async def delete_job(self, job_id: str) -> None:
        await self._call("DELETE", f"/v1/jobs/{job_id}", empty_pb2.Empty())

    async def list_job_types(self) -> list[jobs_pb2.JobType]:
        reply = await self._call("GET", "/v1/jobTypes", job_service_pb2.ListJobTypesResponse())
        return list(reply.job_types)

    async def list_webhook_deliveries(self, job_id: str) -> list[jobs_pb2.WebhookDelivery]:
        """The job's webhook deliveries (its ``webhook_url``), oldest first."""
        reply = await self._call(
            "GET",
            f"/v1/jobs/{job_id}/webhookDeliveries",
            job_service_pb2.ListWebhookDeliveriesResponse(),
        )
        return list(reply.deliveries)

    async def upload(
        self, pieces: AsyncIterator[bytes], content_type: str
    ) -> job_service_pb2.Upload:
        """Store a file for later jobs: the request body, streamed as read."""
        try:
            response = await self._http.post(
                "/v1/uploads",
                content=pieces,
                headers={"Content-Type": content_type},
                timeout=httpx.Timeout(self._http.timeout.connect, read=None, write=None),
            )
        except httpx.TransportError:
            raise GatewayError.unavailable("gateway unreachable") from None
        if response.status_code != 200:
            raise GatewayError(response.status_code, _json_or_none(response))
        return json_format.Parse(
            response.text, job_service_pb2.Upload(), ignore_unknown_fields=True
        )

    async def download(
        self, job_id: str, name: str
    ) -> tuple[jobs_pb2.Artifact, AsyncIterator[bytes]]:
        """One artifact of a job: what its headers say it is, and its bytes as they
        arrive. Errors before the first byte raise here."""
        request = self._http.build_request(
            "GET",
            f"/v1/jobs/{quote(job_id, safe='')}/artifacts/{quote(name, safe='')}",
            timeout=httpx.Timeout(self._http.timeout.connect, read=None),
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError:
            raise GatewayError.unavailable("gateway unreachable") from None
        if response.status_code != 200:
            await response.aread()
            await response.aclose()
            raise GatewayError(response.status_code, _json_or_none(response))
        artifact = jobs_pb2.Artifact(
            name=name,
            content_type=response.headers.get("content-type", ""),
            size=int(response.headers.get("content-length", "0")),
            sha256=response.headers.get("etag", "").strip('"'),
        )

        async def pieces() -> AsyncIterator[bytes]:
            try:
                async for piece in response.aiter_bytes():
                    yield piece
            except httpx.TransportError:
                raise GatewayError.unavailable("the download broke off") from None
            finally:
                await response.aclose()

        return artifact, pieces()

    async def _stream(self, job_id: str, after: int) -> AsyncGenerator[jobs_pb2.JobEvent, None]:
        """One event stream response. ``204`` (the job had ended with nothing after
        ``after``) is an empty stream; a ``200`` that ends before its first event only says
        the gateway lost its upstream, so it fails as unavailable instead of ending empty."""
        try:
            async with self._http.stream(
                "GET",
                f"/v1/jobs/{job_id}/events",
                params={"after_sequence": after},
                timeout=httpx.Timeout(self._http.timeout.connect, read=None),
            ) as response:
                if response.status_code == 204:
                    return
                if response.status_code != 200:
                    await response.aread()
                    raise GatewayError(response.status_code, _json_or_none(response))
                empty = True
                async for event in _events(response):
                    empty = False
                    yield event
                if empty:
                    raise GatewayError.unavailable("the event stream ended before its first event")
        except httpx.TransportError:
            raise GatewayError.unavailable("gateway unreachable") from None

    def _stream_broken(self, error: Exception) -> bool:
        return _unavailable(error)


async def _events(response: httpx.Response) -> AsyncIterator[jobs_pb2.JobEvent]:
    """The JobEvents of an SSE stream: ``data:`` of messages without an ``event:`` name."""
    data: list[str] = []
    named = False
    async for line in response.aiter_lines():
        if not line:
            if data and not named:
                yield json_format.Parse(
                    "\n".join(data), jobs_pb2.JobEvent(), ignore_unknown_fields=True
                )
            data, named = [], False
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            named = True


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None
