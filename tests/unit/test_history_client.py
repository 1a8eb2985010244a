"""The worker's side of an export (``services.ai_worker.history``): a step dispatched
without a step token gets no history, and job_api's refusals become the step errors that
decide whether a new attempt (with a new token) can help."""

from __future__ import annotations

import grpc
import pytest

from jobkit.gen.jobs.internal.v1 import worker_pb2
from services.ai_worker.history import HistoryClient, _step_error
from stepkit.context import no_history


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "details", None)


@pytest.mark.parametrize(
    ("code", "retryable", "error_code"),
    [
        (grpc.StatusCode.PERMISSION_DENIED, False, "HISTORY_REFUSED"),
        (grpc.StatusCode.INVALID_ARGUMENT, False, "HISTORY_REFUSED"),
        # An expired token: the next attempt is dispatched with a fresh one.
        (grpc.StatusCode.UNAUTHENTICATED, True, "HISTORY_UNAUTHENTICATED"),
        (grpc.StatusCode.UNAVAILABLE, True, "HISTORY_UNAVAILABLE"),
        (grpc.StatusCode.INTERNAL, True, "HISTORY_UNAVAILABLE"),
        (grpc.StatusCode.CANCELLED, True, "HISTORY_UNAVAILABLE"),
    ],
)
def test_refusals_map_to_step_errors(
    code: grpc.StatusCode, retryable: bool, error_code: str
) -> None:
    error = _step_error(rpc_error(code))
    assert (error.retryable, error.code) == (retryable, error_code)
    assert "details" not in error.message  # job_api's words stay out of the job's error


async def test_a_task_without_a_token_reads_no_history() -> None:
    client = HistoryClient("127.0.0.1:1")
    try:
        task = worker_pb2.StepTask(job_id="j", job_type="data_export", step="export_jobs")
        assert client.reader(task) is no_history
        task.step_token = "t"
        assert client.reader(task) is not no_history
    finally:
        await client.close()
