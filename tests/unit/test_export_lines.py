"""A data_export's lines (``convert.export_line``): the job as GetJob shows it through
the gateway, its input and its events in order, one line each; and job_api's regrouping of
lines into pieces of a bounded size (``export.pieces``) with the jobs complete in each."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from jobkit.convert import dict_to_struct, export_line, job_to_proto
from jobkit.lifecycle import EventType, JobStatus, StepStatus
from jobkit.model import EventRecord, JobRecord, NewEvent, StepRecord
from services.gateway.transcode import to_json
from services.job_api.export import pieces

NOW = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
JOB_ID = uuid.UUID("7d1f1e8e-6a53-4f4b-9a1c-2b1f3c4d5e6f")
INPUT = {"name": "Zoë Ann O'Brien-Smith", "email": "zoe@example.org", "note": "a\nb"}


def job() -> JobRecord:
    return JobRecord(
        id=JOB_ID,
        owner="alice",
        type="noop",
        status=JobStatus.SUCCEEDED,
        input=dict_to_struct(INPUT).SerializeToString(),
        created_at=NOW,
        updated_at=NOW,
        progress=100,
        phase="Done",
        result=dict_to_struct({"ok": True, "n": 3}).SerializeToString(),
        steps=(StepRecord(JOB_ID, 0, "prepare", StepStatus.SUCCEEDED, attempt=1),),
    )


def events() -> list[EventRecord]:
    return [
        EventRecord(JOB_ID, 1, NewEvent(EventType.CREATED, JobStatus.QUEUED, 0), NOW),
        EventRecord(
            JOB_ID,
            2,
            NewEvent(EventType.SUCCEEDED, JobStatus.SUCCEEDED, 100, phase="Done"),
            NOW,
        ),
    ]


def test_a_line_is_the_job_as_the_gateway_shows_it_its_input_and_its_events() -> None:
    line = export_line(job(), events())
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1  # the newline in the input is escaped
    document = json.loads(line)
    assert list(document) == ["job", "input", "events"]
    assert document["job"] == to_json(job_to_proto(job()))
    assert document["job"]["jobId"] == str(JOB_ID)
    assert document["job"]["result"] == {"ok": True, "n": 3}
    assert document["input"] == INPUT
    assert [e["sequence"] for e in document["events"]] == ["1", "2"]
    assert [e["type"] for e in document["events"]] == [
        "JOB_EVENT_TYPE_CREATED",
        "JOB_EVENT_TYPE_SUCCEEDED",
    ]
    # UTF-8 as it is, not \\u escapes.
    assert "Zoë".encode() in line


async def lines_of(data: list[bytes]) -> AsyncIterator[bytes]:
    for line in data:
        yield line


@pytest.mark.parametrize("size", [1, 5, 7, 10, 64, 1000])
async def test_pieces_are_bounded_and_count_the_lines_they_complete(size: int) -> None:
    data = [b"aaaa\n", b"bbbbbbbbbbbb\n", b"c\n", b"ddddddd\n"]
    got = [p async for p in pieces(lines_of(data), size)]
    assert b"".join(p for p, _ in got) == b"".join(data)
    assert all(0 < len(p) <= size for p, _ in got)
    sent = b""
    for piece, done in got:
        sent += piece
        # exactly the lines wholly inside what was sent so far
        assert done == sent.count(b"\n")
    assert got[-1][1] == len(data)


async def test_no_lines_no_pieces() -> None:
    assert [p async for p in pieces(lines_of([]), 10)] == []
