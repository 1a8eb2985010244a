"""Every way a step reaches a worker carries its job's type version (``StepTask
.type_version``): a handler that serves several versions (``cv_tailoring``'s ``tailor_cv``)
would otherwise take a new job for an old one."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from jobkit import planning
from jobkit.convert import dict_to_struct
from jobkit.dispatch import step_message
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.model import NewJob
from jobtypes import CATALOG
from services.orchestrator.codec import handed_answer, handed_out_answer
from services.orchestrator.state_machine import Dispatch

NOW = datetime(2026, 12, 5, tzinfo=UTC)


EXAMPLE = Path(__file__).parents[2] / "jobtypes" / "cv_tailoring" / "example.json"


def planned(job_type: str) -> NewJob:
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))["input"]
    raw = dict_to_struct(doc).SerializeToString(deterministic=True)
    valid = planning.validate(
        planning.CreateRequest(job_type, raw, doc, None), CATALOG, max_input_bytes=1 << 20
    )
    return planning.plan(valid, owner="alice", job_id=uuid.uuid4(), now=NOW, trace_context="")


def test_the_first_dispatch_a_jetstream_dispatch_and_a_handed_step_say_the_version() -> None:
    new = planned("cv_tailoring")
    assert new.job.type_version == CATALOG["cv_tailoring"].version == 3
    (first,) = new.change.outbox
    assert worker_pb2.StepTask.FromString(first.payload).type_version == 3
    # A job made on version 2, its later steps: through JetStream, handed to the worker
    # that finished the step before, and handed out to another worker whole.
    older = replace(new.job, type_version=2)
    message = step_message(older, "tailor_cv", 1, 300)
    assert worker_pb2.StepTask.FromString(message.payload).type_version == 2
    dispatch = Dispatch(older.id, "tailor_cv", 1, 300)
    handed = worker_pb2.ResultAnswer.FromString(handed_answer(older, dispatch, "jobs.results"))
    assert handed.next.type_version == 2
    handed_out = worker_pb2.ResultAnswer.FromString(handed_out_answer(message))
    assert handed_out.waiting.type_version == 2
