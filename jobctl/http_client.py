"""The same calls as ``JobsClient``, over the HTTP gateway: for networks where only HTTPS
reaches the system (an Ingress, a corporate proxy), and as a reference client of the
gateway's contract. Messages stay the protos: JSON in and out through the proto3 mapping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import grpc
import httpx
from google.protobuf import empty_pb2, json_format
from google.protobuf.message import Message

from jobctl.client import TERMINAL_EVENT_TYPES
from jobkit.gen.jobs.v1 import job_service_pb2, jobs_pb2

M = TypeVar("M", bound=Message)
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class GatewayError(Exception):
    """A call the gateway refused: the gRPC status it carries, like ``AioRpcError``."""

    def __init__(self, status: int, body: Any) -> None:
        document = body if isinstance(body, dict) else {}
        self._code = _CODES.get(document.get("code", -1), grpc.StatusCode.UNKNOWN)
        self._details = str(document.get("message") or f"HTTP {status}")
        self.http_status = status
        super().__init__(f"{self._code.name}: {self._details}")

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class HttpJobsClient:
    def __init__(
        self, base_url: str, token: str, *, timeout_s: float = 10.0, retries: int = 4
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )
        self._retries = retries

    async def __aenter__(self) -> HttpJobsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        reply: M,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        retry: bool = True,
    ) -> M:
        delay = 0.2
        for attempt in range(self._retries + 1):
            try:
                response = await self._http.request(method, path, json=body, params=params)
            except httpx.TransportError:
                if not retry or attempt == self._retries:
                    raise GatewayError(
                        503, {"code": 14, "message": "gateway unreachable"}
                    ) from None
            else:
                if response.status_code == 200:
                    return json_format.ParseDict(response.json(), reply, ignore_unknown_fields=True)
                error = GatewayError(response.status_code, _json_or_none(response))
                if error.code() != grpc.StatusCode.UNAVAILABLE or not retry:
                    raise error
                if attempt == self._retries:
                    raise error
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")

    async def create_job(
        self, job_type: str, input: Mapping[str, Any], *, idempotency_key: str = ""
    ) -> jobs_pb2.Job:
        """Create a job. Retried on UNAVAILABLE only with an idempotency key (else once)."""
        body = {"type": job_type, "input": dict(input), "idempotencyKey": idempotency_key}
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
        status: Any = jobs_pb2.JOB_STATUS_UNSPECIFIED,
        job_type: str = "",
    ) -> job_service_pb2.ListJobsResponse:
        params: dict[str, Any] = {"pageSize": page_size}
        if page_token:
            params["pageToken"] = page_token
        if status:
            params["status"] = jobs_pb2.JobStatus.Name(status)
        if job_type:
            params["type"] = job_type
        return await self._call(
            "GET", "/v1/jobs", job_service_pb2.ListJobsResponse(), params=params
        )

    async def cancel_job(self, job_id: str) -> jobs_pb2.Job:
        return await self._call("POST", f"/v1/jobs/{job_id}:cancel", jobs_pb2.Job(), body={})

    async def retry_job(self, job_id: str) -> jobs_pb2.Job:
        return await self._call("POST", f"/v1/jobs/{job_id}:retry", jobs_pb2.Job(), body={})

    async def delete_job(self, job_id: str) -> None:
        await self._call("DELETE", f"/v1/jobs/{job_id}", empty_pb2.Empty())

    async def list_job_types(self) -> list[jobs_pb2.JobType]:
        reply = await self._call("GET", "/v1/jobTypes", job_service_pb2.ListJobTypesResponse())
        return list(reply.job_types)

    async def watch(
        self, job_id: str, after_sequence: int = 0, *, max_reconnects: int = 30
    ) -> AsyncIterator[jobs_pb2.JobEvent]:
        """The job's events after ``after_sequence`` until its terminal one, from the
        gateway's event stream; a dropped stream resumes with ``Last-Event-ID``."""
        last = after_sequence
        failures = 0
        url = f"/v1/jobs/{job_id}/events"
        while True:
            try:
                async with self._http.stream(
                    "GET",
                    url,
                    params={"after_sequence": last},
                    timeout=httpx.Timeout(self._http.timeout.connect, read=None),
                ) as response:
                    if response.status_code == 204:
                        return  # the job had ended, with nothing after `last`
                    if response.status_code != 200:
                        await response.aread()
                        error = GatewayError(response.status_code, _json_or_none(response))
                        if error.code() != grpc.StatusCode.UNAVAILABLE:
                            raise error
                        raise httpx.TransportError(error.details())
                    async for event in _events(response):
                        failures = 0
                        if event.sequence <= last:
                            continue
                        last = event.sequence
                        yield event
                        if event.type in TERMINAL_EVENT_TYPES:
                            return
            except httpx.TransportError:
                pass
            # The stream broke or ended early (a gateway replica going away): resume.
            failures += 1
            if failures > max_reconnects:
                raise GatewayError(503, {"code": 14, "message": "the event stream keeps failing"})
            await asyncio.sleep(min(0.2 * 2 ** min(failures, 4), 3.0))


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


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
