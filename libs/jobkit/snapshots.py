"""A new job as job_api wrote it, sent to the orchestrators so the first result on it is
decided without reading it back.

The first report on a job reaches an orchestrator that has never written the job: its
batch read the job from Postgres, a round trip on every job's critical path (about a
tenth of an idle job). So after CreateJob's commit, job_api publishes the job exactly as
its row now stands (``store.as_created``) on ``jobs.snapshots`` (core NATS, no stream:
losing one costs only that read), and every orchestrator replica keeps it in its memory
of jobs (``JobMemory.seed``), where the job's own writes would have put it.

Nothing is trusted blindly: a write names the version its decision was made from, so a
snapshot that is stale by the time it is used (a cancel in between) fails the write,
and the batch is decided again from Postgres, as with any memory.

The encoding is JSON, field by field, so it decodes to a record equal to the one encoded
(``tests/unit/test_snapshots.py``) and to what a read of the row returns
(``tests/integration/test_store.py``).
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from nats.aio.client import Client as NatsClient

from jobkit.bus import SNAPSHOT_SUBJECT
from jobkit.inputs import InputRequest
from jobkit.lifecycle import JobStatus, StepStatus
from jobkit.logging import get_logger
from jobkit.model import JobRecord, StepRecord

log = get_logger(__name__)

#: A job whose input and checkpoints take more than this is not sent: a NATS message is
#: at most 1 MiB by default, and such a job's read is a small part of its time anyway.
MAX_BYTES = 256 * 1024


def fits(job: JobRecord) -> bool:
    return len(job.input) + sum(len(s.output or b"") for s in job.steps) <= MAX_BYTES


async def announce(nc: NatsClient, job: JobRecord) -> None:
    """Best effort, after the commit: without it the orchestrator reads the job."""
    if not fits(job):
        return
    try:
        await nc.publish(SNAPSHOT_SUBJECT, encode(job))
    except Exception as exc:
        log.warning("snapshot_publish_failed", error=type(exc).__name__)


def encode(job: JobRecord) -> bytes:
    return json.dumps(
        {
            "id": str(job.id),
            "owner": job.owner,
            "type": job.type,
            "status": job.status.value,
            "input": _b64(job.input),
            "created_at": job.created_at.isoformat(),
            "updated_at": job.updated_at.isoformat(),
            "progress": job.progress,
            "phase": job.phase,
            "result": _b64(job.result),
            "error_code": job.error_code,
            "error_message": job.error_message,
            "last_sequence": job.last_sequence,
            "finished_at": _time(job.finished_at),
            "steps": [_encode_step(s) for s in job.steps],
            "trace_context": job.trace_context,
            "version": job.version,
            "parent_id": _id(job.parent_id),
            "priority": job.priority,
            "not_before": _time(job.not_before),
            "deadline_at": _time(job.deadline_at),
            "concurrency_key": job.concurrency_key,
            "concurrency_limit": job.concurrency_limit,
            "webhook_url": job.webhook_url,
            "type_version": job.type_version,
            "forked_from_id": _id(job.forked_from_id),
        },
        separators=(",", ":"),
    ).encode()


def decode(data: bytes) -> JobRecord:
    """Raises ``ValueError``, ``KeyError`` or ``TypeError`` on what ``encode`` did not
    write."""
    j: dict[str, Any] = json.loads(data)
    job_id = uuid.UUID(j["id"])
    return JobRecord(
        id=job_id,
        owner=j["owner"],
        type=j["type"],
        status=JobStatus(j["status"]),
        input=_bytes(j["input"]) or b"",
        created_at=datetime.fromisoformat(j["created_at"]),
        updated_at=datetime.fromisoformat(j["updated_at"]),
        progress=int(j["progress"]),
        phase=j["phase"],
        result=_bytes(j["result"]),
        error_code=j["error_code"],
        error_message=j["error_message"],
        last_sequence=int(j["last_sequence"]),
        finished_at=_parse_time(j["finished_at"]),
        steps=tuple(_decode_step(job_id, s) for s in j["steps"]),
        trace_context=j["trace_context"],
        version=int(j["version"]),
        parent_id=_parse_id(j["parent_id"]),
        priority=int(j["priority"]),
        not_before=_parse_time(j["not_before"]),
        deadline_at=_parse_time(j["deadline_at"]),
        concurrency_key=j["concurrency_key"],
        concurrency_limit=j["concurrency_limit"],
        webhook_url=j["webhook_url"],
        type_version=int(j["type_version"]),
        forked_from_id=_parse_id(j["forked_from_id"]),
    )


def _encode_step(s: StepRecord) -> dict[str, Any]:
    return {
        "position": s.position,
        "name": s.name,
        "status": s.status.value,
        "attempt": s.attempt,
        "retry_base": s.retry_base,
        "output": _b64(s.output),
        "error_code": s.error_code,
        "error_message": s.error_message,
        "lease_expires_at": _time(s.lease_expires_at),
        "started_at": _time(s.started_at),
        "finished_at": _time(s.finished_at),
        "cursor": _b64(s.cursor),
        "percent": s.percent,
        "input_request": s.input_request.to_json() if s.input_request is not None else None,
    }


def _decode_step(job_id: uuid.UUID, s: dict[str, Any]) -> StepRecord:
    return StepRecord(
        job_id=job_id,
        position=int(s["position"]),
        name=s["name"],
        status=StepStatus(s["status"]),
        attempt=int(s["attempt"]),
        retry_base=int(s["retry_base"]),
        output=_bytes(s["output"]),
        error_code=s["error_code"],
        error_message=s["error_message"],
        lease_expires_at=_parse_time(s["lease_expires_at"]),
        started_at=_parse_time(s["started_at"]),
        finished_at=_parse_time(s["finished_at"]),
        cursor=_bytes(s["cursor"]),
        percent=int(s["percent"]),
        input_request=InputRequest.from_json(s["input_request"]),
    )


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text, validate=True)


def _time(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _parse_id(text: str | None) -> uuid.UUID | None:
    return None if text is None else uuid.UUID(text)
