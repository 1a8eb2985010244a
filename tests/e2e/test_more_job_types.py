"""resume_improvement and skill_gap_analysis end to end on the local provider: created from
the example requests, listed by ListJobTypes, run through every step to SUCCEEDED with
their phases and deterministic results. (The local provider writes too fast for partial
output, which waits 250 ms: the unit tests and the openai run cover it.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2
from jobtypes import CATALOG
from tests.e2e.rejections import refused_input

pytestmark = pytest.mark.e2e

E = jobs_pb2


def example(name: str) -> dict[str, Any]:
    request: dict[str, Any] = json.loads(Path(f"jobtypes/{name}/example.json").read_text("utf-8"))
    return request


async def run_example(
    client: JobsClient, name: str, prose_step: str
) -> tuple[list[jobs_pb2.JobEvent], Any]:
    request = example(name)
    job = await client.create_job(request["type"], request["input"])
    assert [s.name for s in job.steps] == list(CATALOG[name].step_names)
    events = await asyncio.wait_for(_watch(client, job.job_id), 60)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED, [e.message for e in events]
    final = await client.get_job(job.job_id)
    assert final.status == E.JOB_STATUS_SUCCEEDED
    assert final.progress == 100
    # The prose step's model calls are on the job; the others made none.
    usage = {s.name: [u.model for u in s.usage] for s in final.steps}
    assert usage == {step: [] for step in usage} | {prose_step: ["local-templates"]}
    return events, struct_to_dict(final.result)


async def _watch(client: JobsClient, job_id: str) -> list[jobs_pb2.JobEvent]:
    return [e async for e in client.watch(job_id)]


def started_phases(events: list[jobs_pb2.JobEvent]) -> list[tuple[str, str, int]]:
    return [
        (e.step, e.phase, e.progress) for e in events if e.type == E.JOB_EVENT_TYPE_STEP_STARTED
    ]


async def test_every_type_is_listed_with_an_input_schema_a_client_can_use(
    alice: JobsClient,
) -> None:
    types = {t.name: t for t in await alice.list_job_types()}
    assert list(types) == list(CATALOG)
    for name, listed in types.items():
        assert list(listed.steps) == list(CATALOG[name].step_names)
        assert listed.description == CATALOG[name].description
        # A client validates with any JSON Schema library before it submits.
        schema = struct_to_dict(listed.input_schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        validator = Draft202012Validator(schema)
        assert not list(validator.iter_errors(example(name)["input"])), name
        required = set(schema.get("required", []))
        missing = {e.message for e in validator.iter_errors({})}
        assert missing == {f"{field!r} is a required property" for field in required}


async def test_resume_improvement_runs_to_success(alice: JobsClient) -> None:
    events, result = await run_example(alice, "resume_improvement", "write_suggestions")
    assert started_phases(events) == [
        ("load_resume", "Reading your résumé...", 10),
        ("analyze_resume", "Checking verbs, figures, length and sections...", 25),
        ("write_suggestions", "Writing suggestions...", 45),
        ("render_report", "Rendering report...", 90),
    ]
    assert events[-1].phase == "Suggestions ready!"
    assert "Writing the overview..." in {e.phase for e in events}
    assert result["score"] == 45
    assert [f["code"] for f in result["findings"]][:4] == [
        "weak_verb",
        "weak_verb",
        "weak_verb",
        "unproven_skills",
    ]
    assert len(result["rewrites"]) == 4
    assert result["rewrites"][0]["suggestion"].startswith("Open with a strong verb such as Owned")
    assert result["report_markdown"].startswith("# Résumé review: Sam Example")


async def test_skill_gap_analysis_runs_to_success(alice: JobsClient) -> None:
    events, result = await run_example(alice, "skill_gap_analysis", "write_learning_plan")
    assert started_phases(events) == [
        ("load_resume", "Reading your résumé...", 10),
        ("map_role_skills", "Mapping the skills of the target role...", 20),
        ("find_gaps", "Finding your skill gaps...", 35),
        ("write_learning_plan", "Writing your learning plan...", 50),
        ("render_report", "Rendering report...", 90),
    ]
    assert events[-1].phase == "Learning plan ready!"
    assert result["target_role"] == "Data Engineer"
    assert result["coverage_score"] == 24
    assert result["missing_skills"][0] == "ETL"
    assert "dbt" in result["missing_skills"]
    assert result["learning_plan"][0]["end_week"] == 5
    assert result["plan_text"].startswith("A plan towards Data Engineer at 8 hours a week")


async def test_bad_input_is_rejected_with_field_violations(stack: Stack) -> None:
    job_input = {"resume": {"skills": "Python"}, "hours_per_week": 200}
    violations = await refused_input(stack, "skill_gap_analysis", job_input)
    assert {field for field, _ in violations} == {
        "input.resume.name",
        "input.resume.skills",
        "input.target_role",
        "input.hours_per_week",
    }
