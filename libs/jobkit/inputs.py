"""What a step waiting for a person asks (``InputRequest``), and the check of an answer.

A step's handler asks (``StepContext.request_input``); the orchestrator records the request
on the step, now ``WAITING_INPUT``, and in the job's ``INPUT_REQUIRED`` event; SubmitInput
checks an answer against the request's schema (``violations``) and commits, as the step's
checkpoint, the request's draft with the answer applied to it (``answered``; the answer
alone if it had none) (``jobkit.control.answer``). Stored as JSON (``jsonb``, readable by an
operator in psql); ``jobkit.convert`` makes the ``jobs.v1.InputRequest`` clients see.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobkit.errors import FieldViolation
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

    def to_json(self) -> str:
        return json.dumps(
            {
                "prompt": self.prompt,
                "schema": self.schema,
                "draft": self.draft,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> InputRequest | None:
        if text is None:
            return None
        doc = json.loads(text)
        expires_at = doc.get("expires_at")
        return cls(
            prompt=doc["prompt"],
            schema=doc["schema"],
            draft=doc.get("draft"),
            expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
        )


def answered(request: InputRequest, answer: Mapping[str, Any]) -> dict[str, Any]:
    """The step's checkpoint once ``answer`` is given: the draft with the answer applied
    as a JSON Merge Patch (RFC 7386), so that ``{"approved": true}`` keeps the draft and
    adds the approval, and an edit names only the members it changes; without a draft,
    the answer as it is."""
    if request.draft is None:
        return dict(answer)
    return merge_patch(request.draft, answer)


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 on JSON objects: each member of ``patch`` replaces ``target``'s, objects
    merged member by member, a ``null`` taking the member away."""
    merged = dict(target)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        elif isinstance(value, Mapping):
            before = merged.get(name)
            merged[name] = merge_patch(before if isinstance(before, Mapping) else {}, value)
        else:
            merged[name] = value
    return merged


def violations(request: InputRequest, answer: Mapping[str, Any]) -> list[FieldViolation]:
    """Every way ``answer`` breaks the request's schema, each naming its field as
    ``input...`` (SubmitInput's field)."""
    return compile_schema(dict(request.schema)).validate(answer, "input")
