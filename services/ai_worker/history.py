"""How a step reads its job owner's history (``StepContext.export_history``): job_api's
internal ExportService over gRPC, with the step token its attempt was dispatched with.

The worker never touches Postgres; job_api reads the history in one snapshot and streams
it. The pieces are handed to the step as they arrive (gRPC's flow control holds job_api
back while the step writes them to the object store), never gathered whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from jobkit.gen.jobs.internal.v1 import export_pb2, export_pb2_grpc, worker_pb2
from stepkit import PermanentStepError, RetryableStepError, StepError
from stepkit.context import HistoryPiece, HistoryReader, no_history

#: Refusals no new attempt changes: the job is not (or no longer) one that may export.
_REFUSED = frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT})


def _step_error(error: grpc.aio.AioRpcError) -> StepError:
    code = error.code()
    if code in _REFUSED:
        return PermanentStepError("HISTORY_REFUSED", "job_api refused to export the history")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        # Most likely the token expired while the attempt waited for a worker: the next
        # attempt is dispatched with a new one.
        return RetryableStepError("HISTORY_UNAUTHENTICATED", "the step token was not accepted")
    return RetryableStepError(
        "HISTORY_UNAVAILABLE", f"reading the history from job_api failed ({code.name})"
    )


class HistoryClient:
    """One channel to job_api per worker process; a reader per attempt."""

    def __init__(self, address: str) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = export_pb2_grpc.ExportServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close(None)

    def reader(self, task: worker_pb2.StepTask) -> HistoryReader:
        """The attempt's ``export_history``: none for a step dispatched without a token."""
        if not task.step_token:
            return no_history
        request = export_pb2.ExportJobsRequest(job_id=task.job_id)
        metadata = (("authorization", f"Bearer {task.step_token}"),)

        async def read() -> AsyncIterator[HistoryPiece]:
            call = self._stub.ExportJobs(request, metadata=metadata)
            total: int | None = None
            try:
                async for response in call:
                    if total is None:
                        total = response.total_jobs
                    yield HistoryPiece(response.data, response.jobs_done, total)
            except grpc.aio.AioRpcError as error:
                raise _step_error(error) from None
            finally:
                # A step that stops reading early (an object store failure) ends the call.
                call.cancel()
            if total is None:
                raise RetryableStepError("HISTORY_UNAVAILABLE", "job_api sent no history")

        return read
