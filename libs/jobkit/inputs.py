"""What a step waiting for a person asks (``InputRequest``), and the check of an answer.

A step's handler asks (``StepContext.request_input``); the orchestrator records the request
on the step, now ``WAITING_INPUT``, and in the job's ``INPUT_REQUIRED`` event; SubmitInput
checks an answer against the request's schema (``violations``) and commits it as the
step's checkpoint (``jobkit.control.answer``). Stored as a serialized
``jobs.v1.InputRequest``, the message clients see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2

from jobkit.errors import FieldViolation
from jobkit.gen.jobs.v1 import jobs_pb2
from jobkit.schema import compile_schema

#: The longest a step may ask to wait for an answer (a job's longest deadline).
MAX_WAIT_S = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class InputRequest:
    #: What to ask, in words for the person answering.
    prompt: str
    #: The JSON Schema (2020-12) an answer must match.
    schema: Mapping[str, Any]
    #: What the step proposes, for the person to approve or edit.
    draft: Mapping[str, Any] | None = None
    #: When the wait ends unanswered (the step fails with ``INPUT_TIMEOUT``).
    expires_at: datetime | None = None

    def to_proto(self) -> jobs_pb2.InputRequest:
        message = jobs_pb2.InputRequest(prompt=self.prompt)
        message.schema.update(dict(self.schema))
        if self.draft is not None:
            message.draft.update(dict(self.draft))
        if self.expires_at is not None:
            message.expires_at.FromDatetime(self.expires_at)
        return message

    def to_bytes(self) -> bytes:
        return self.to_proto().SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(cls, data: bytes | None) -> InputRequest | None:
        if not data:
            return None
        message = jobs_pb2.InputRequest.FromString(data)
        return cls(
            prompt=message.prompt,
            schema=_plain(message.schema),
            draft=_plain(message.draft) if message.HasField("draft") else None,
            expires_at=(
                message.expires_at.ToDatetime(tzinfo=UTC)
                if message.HasField("expires_at")
                else None
            ),
        )


def _plain(value: struct_pb2.Struct) -> dict[str, Any]:
    doc: dict[str, Any] = json_format.MessageToDict(value)
    return doc


def violations(request: InputRequest, answer: Mapping[str, Any]) -> list[FieldViolation]:
    """Every way ``answer`` breaks the request's schema, each naming its field as
    ``input...`` (SubmitInput's field)."""
    return compile_schema(dict(request.schema)).validate(answer, "input")
