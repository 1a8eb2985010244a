"""A job waiting for a person: which of its steps asks, what ``jobctl answer`` sends, and
the line that tells a user how to answer. Pure: no I/O, no transport.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from jobkit.gen.jobs.v1 import jobs_pb2

#: What ``--approve`` sends: the draft, taken as it is.
APPROVAL: dict[str, Any] = {"approved": True}


class NothingWaiting(Exception):
    """``jobctl answer`` without ``--step``, for a job none of whose steps waits for input."""


def waiting_steps(job: jobs_pb2.Job) -> list[jobs_pb2.JobStep]:
    """The job's steps waiting for input, in the job's step order."""
    return [s for s in job.steps if s.status == jobs_pb2.STEP_STATUS_WAITING_INPUT]


def only_waiting_step(job: jobs_pb2.Job) -> str:
    """The job's one step waiting for input, for ``jobctl answer`` without ``--step``.
    None waiting is ``NothingWaiting``; several, a ``ValueError`` (bad usage: ``--step``
    must say which)."""
    waiting = [s.name for s in waiting_steps(job)]
    if not waiting:
        status = jobs_pb2.JobStatus.Name(job.status).removeprefix("JOB_STATUS_")
        raise NothingWaiting(f"no step of job {job.job_id} waits for input (it is {status})")
    if len(waiting) > 1:
        raise ValueError(
            f"several steps of job {job.job_id} wait for input ({', '.join(waiting)}): pass --step"
        )
    return waiting[0]


def read_answer(approve: bool, inline: str | None, path: str | None) -> dict[str, Any]:
    """The answer ``jobctl answer`` sends: ``--approve``, ``--input`` (inline JSON,
    ``@file.json`` or ``-`` for stdin, as ``submit`` takes it, already read into
    ``inline``) or ``--input-file`` (a path, read here)."""
    if approve:
        return dict(APPROVAL)
    if path is not None:
        inline = Path(path).read_text(encoding="utf-8")
    if inline is None:
        raise ValueError("answer needs --approve, --input or --input-file")
    try:
        loaded = json.loads(inline)
    except json.JSONDecodeError as error:
        raise ValueError(f"the answer is not JSON: {error}") from None
    if not isinstance(loaded, dict):
        raise ValueError("the answer must be a JSON object")
    return loaded


def accepts_approval(schema: Mapping[str, Any]) -> bool:
    """Whether a schema lets an answer be ``{"approved": true}``: it names ``approved``
    among its properties, or one of its alternatives does."""
    properties = schema.get("properties")
    if isinstance(properties, Mapping) and "approved" in properties:
        return True
    for keyword in ("oneOf", "anyOf", "allOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list) and any(
            isinstance(b, Mapping) and accepts_approval(b) for b in branches
        ):
            return True
    return False


def answer_hint(job_id: str, step: str, request: jobs_pb2.InputRequest, *, name_step: bool) -> str:
    """The command that answers ``step``: with ``--approve`` if its schema takes an
    approval, else with the answer as JSON; ``--step`` only when it must be said."""
    command = f"jobctl answer {job_id}" + (f" --step {step}" if name_step else "")
    schema = json_format.MessageToDict(request.schema)
    if accepts_approval(schema):
        if request.HasField("draft"):
            return f"{command} --approve  (or --input-file FILE: the draft, edited)"
        return f"{command} --approve  (or --input JSON)"
    return f"{command} --input JSON  (or --input-file FILE)"
