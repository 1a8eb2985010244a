"""``jobctl answer`` and how jobctl shows a job waiting for a person: the arguments, the
step it picks, what it sends through either transport, its exit codes and error lines,
and the prompt and the command to answer it in ``get`` and ``watch``."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from rich.console import Console

from jobctl import cli
from jobctl.http_client import GatewayError, HttpJobsClient
from jobctl.progress import JobProgress
from jobctl.waiting import accepts_approval, answer_hint
from jobkit.gen.jobs.v1 import jobs_pb2 as E

JOB_ID = "6f1c0000-0000-0000-0000-000000000001"
PROMPT = "Check the tailored CV: approve it, or edit it and send it back."
#: The shape of cv_tailoring's review: approve, or send the CV back edited.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "oneOf": [
        {"properties": {"approved": {"const": True}}, "required": ["approved"]},
        {"properties": {"tailored_cv": {"type": "object"}}, "required": ["tailored_cv"]},
    ],
}
DRAFT = {"tailored_cv": {"name": "Ada Example", "summary": "Backend engineer.", "skills": []}}


def request(prompt: str = PROMPT, *, draft: Mapping[str, Any] | None = DRAFT) -> E.InputRequest:
    message = E.InputRequest(prompt=prompt)
    message.schema.update(SCHEMA)
    if draft is not None:
        message.draft.update(dict(draft))
    return message


def waiting_job(*waiting: str) -> E.Job:
    """A cv_tailoring job whose named steps wait for input (the rest succeeded or run)."""
    steps = []
    for name in ("load_profile", "tailor_cv", "review_cv", "write_cover_letter"):
        if name in waiting:
            steps.append(
                E.JobStep(
                    name=name,
                    status=E.STEP_STATUS_WAITING_INPUT,
                    attempt=1,
                    input_request=request(),
                )
            )
        else:
            steps.append(E.JobStep(name=name, status=E.STEP_STATUS_SUCCEEDED, attempt=1))
    status = E.JOB_STATUS_WAITING_INPUT if waiting else E.JOB_STATUS_RUNNING
    return E.Job(
        job_id=JOB_ID,
        type="cv_tailoring",
        status=status,
        progress=60,
        phase="Waiting for your review...",
        steps=steps,
    )


@dataclass
class Backend:
    """What the fake clients answer, and what they were asked: ``get_job`` returns
    ``job``; ``submit_input`` records its call and returns ``answered``, or raises
    ``error``. ``transports`` names the client each run made."""

    job: E.Job = field(default_factory=lambda: waiting_job("review_cv"))
    answered: E.Job = field(default_factory=waiting_job)
    error: Exception | None = None
    transports: list[str] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    submitted: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def run(self, *argv: str) -> int:
        self.gets.clear()
        self.submitted.clear()
        return cli.main(list(argv))


class FakeJobs:
    """Stands in for either client, answering from a ``Backend``."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def __aenter__(self) -> FakeJobs:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def get_job(self, job_id: str) -> E.Job:
        self._backend.gets.append(job_id)
        return self._backend.job

    async def submit_input(self, job_id: str, step: str, answer: Mapping[str, Any]) -> E.Job:
        self._backend.submitted.append((job_id, step, dict(answer)))
        if self._backend.error is not None:
            raise self._backend.error
        return self._backend.answered


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Backend:
    """jobctl's two clients replaced by fakes answering from the returned ``Backend``."""
    answers = Backend()

    def client(name: str) -> Any:
        def make(*args: object, **kwargs: object) -> FakeJobs:
            answers.transports.append(name)
            return FakeJobs(answers)

        return make

    monkeypatch.setattr(cli, "JobsClient", client("grpc"))
    monkeypatch.setattr(cli, "HttpJobsClient", client("http"))
    monkeypatch.setenv("JOBS_TOKEN", "token")
    monkeypatch.delenv("JOBS_HTTP", raising=False)
    return answers


# -- the arguments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["answer", JOB_ID],  # no answer at all
        ["answer", JOB_ID, "--approve", "--input", "{}"],  # two
        ["answer", JOB_ID, "--input", "{}", "--input-file", "a.json"],
        ["answer"],  # no job
    ],
)
def test_an_answer_takes_exactly_one_of_approve_input_and_input_file(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert "usage: jobctl answer" in capsys.readouterr().err


def test_approve_answers_the_one_waiting_step_with_approved_true(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert backend.run("answer", JOB_ID, "--approve") == 0
    assert backend.transports == ["grpc"]
    assert backend.gets == [JOB_ID]
    assert backend.submitted == [(JOB_ID, "review_cv", {"approved": True})]
    out = capsys.readouterr().out
    assert out.startswith(f"answered review_cv\njob      {JOB_ID}\n")
    assert "status   RUNNING" in out
    assert "waiting " not in out  # nothing waits any more


def test_the_same_through_the_gateway(backend: Backend) -> None:
    assert backend.run("--http", "http://gateway", "answer", JOB_ID, "--approve") == 0
    assert backend.transports == ["http"]
    assert backend.submitted == [(JOB_ID, "review_cv", {"approved": True})]


def test_a_named_step_is_sent_as_named_without_a_lookup(backend: Backend) -> None:
    assert backend.run("answer", JOB_ID, "--step", "approve_plan", "--approve") == 0
    assert backend.gets == []
    assert backend.submitted == [(JOB_ID, "approve_plan", {"approved": True})]


def test_input_is_inline_json_a_file_or_stdin(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited = {"tailored_cv": {**DRAFT["tailored_cv"], "summary": "Edited."}}
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps(edited), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(edited)))
    for given in (
        ["--input", json.dumps(edited)],
        ["--input-file", str(answer)],
        ["--input", f"@{answer}"],
        ["-i", "-"],
    ):
        assert backend.run("answer", JOB_ID, *given) == 0, given
        assert backend.submitted == [(JOB_ID, "review_cv", edited)], given


@pytest.mark.parametrize(
    ("text", "says"),
    [("[1, 2]", "must be a JSON object"), ("{not json", "is not JSON"), ('"yes"', "object")],
)
def test_an_answer_that_is_not_a_json_object_is_refused_before_any_call(
    backend: Backend, capsys: pytest.CaptureFixture[str], text: str, says: str
) -> None:
    assert backend.run("answer", JOB_ID, "--input", text) == 2
    assert backend.gets == []
    assert backend.submitted == []
    assert says in capsys.readouterr().err


def test_a_missing_answer_file_is_a_usage_error(
    backend: Backend, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert backend.run("answer", JOB_ID, "--input-file", str(tmp_path / "nowhere.json")) == 2
    assert "nowhere.json" in capsys.readouterr().err


def test_no_waiting_step_is_a_precondition_and_several_need_step(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.job = waiting_job()
    assert backend.run("answer", JOB_ID, "--approve") == 6
    assert backend.submitted == []
    assert capsys.readouterr().err == (
        f"jobctl: no step of job {JOB_ID} waits for input (it is RUNNING)\n"
    )

    backend.job = waiting_job("tailor_cv", "review_cv")
    assert backend.run("answer", JOB_ID, "--approve") == 2
    assert backend.submitted == []
    assert capsys.readouterr().err == (
        f"jobctl: several steps of job {JOB_ID} wait for input (tailor_cv, review_cv): "
        "pass --step\n"
    )


def test_json_output_is_the_job(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    assert backend.run("answer", JOB_ID, "--approve", "-o", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["job_id"] == JOB_ID
    assert shown["status"] == "JOB_STATUS_RUNNING"


# -- errors: exit codes and field violations, from either transport --------------------

VIOLATIONS = [
    ("input.tailored_cv.summary", "must be a string"),
    ("input.tailored_cv.skills[0]", "must not be empty"),
]


def grpc_error(code: grpc.StatusCode, message: str, *, violations: bool = False) -> Exception:
    trailing = grpc.aio.Metadata()
    if violations:
        status = status_pb2.Status(code=code.value[0], message=message)
        status.details.add().Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in VIOLATIONS
                ]
            )
        )
        trailing.add("grpc-status-details-bin", status.SerializeToString())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, message, None)


def gateway_error(code: grpc.StatusCode, message: str, *, violations: bool = False) -> Exception:
    status = status_pb2.Status(code=code.value[0], message=message)
    if violations:
        status.details.add().Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in VIOLATIONS
                ]
            )
        )
    return GatewayError(400, json_format.MessageToDict(status))


@pytest.mark.parametrize("make", [grpc_error, gateway_error], ids=["grpc", "http"])
def test_an_answer_that_does_not_match_prints_each_field_violation(
    backend: Backend, capsys: pytest.CaptureFixture[str], make: Any
) -> None:
    backend.error = make(
        grpc.StatusCode.INVALID_ARGUMENT,
        "input.tailored_cv.summary must be a string",
        violations=True,
    )
    assert backend.run("answer", JOB_ID, "--input", '{"tailored_cv": {"summary": 3}}') == 2
    assert capsys.readouterr().err.splitlines() == [
        "jobctl: INVALID_ARGUMENT: input.tailored_cv.summary must be a string",
        "  input.tailored_cv.summary: must be a string",
        "  input.tailored_cv.skills[0]: must not be empty",
    ]


@pytest.mark.parametrize("make", [grpc_error, gateway_error], ids=["grpc", "http"])
def test_a_step_that_waits_no_more_exits_as_a_precondition(
    backend: Backend, capsys: pytest.CaptureFixture[str], make: Any
) -> None:
    backend.error = make(
        grpc.StatusCode.FAILED_PRECONDITION, "step review_cv is not waiting for input"
    )
    assert backend.run("answer", JOB_ID, "--step", "review_cv", "--approve") == 6
    assert capsys.readouterr().err == (
        "jobctl: FAILED_PRECONDITION: step review_cv is not waiting for input\n"
    )


async def test_the_http_client_posts_the_answer_to_submit_input() -> None:
    seen: list[httpx.Request] = []

    def answer(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if len(seen) == 1:
            return httpx.Response(200, json={"jobId": JOB_ID, "status": "JOB_STATUS_RUNNING"})
        if len(seen) == 3:
            return httpx.Response(503, json={"code": 14, "message": "job_api unavailable"})
        return httpx.Response(
            400,
            json={
                "code": 3,
                "message": "bad",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": f, "description": d} for f, d in VIOLATIONS],
                    }
                ],
            },
        )

    async with HttpJobsClient(
        "http://gateway", "token", transport=httpx.MockTransport(answer)
    ) as client:
        job = await client.submit_input(JOB_ID, "review_cv", {"approved": True})
        assert job.status == E.JOB_STATUS_RUNNING
        with pytest.raises(GatewayError) as refused:
            await client.submit_input(JOB_ID, "review_cv", {"tailored_cv": {"summary": 3}})
        with pytest.raises(GatewayError) as unavailable:
            await client.submit_input(JOB_ID, "review_cv", {"approved": True})
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.field_violations() == VIOLATIONS
    # Not retried even when unavailable: had it arrived, a repeat would only be refused.
    assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(seen) == 3
    first = seen[0]
    assert (first.method, first.url.path) == ("POST", f"/v1/jobs/{JOB_ID}:submitInput")
    assert first.headers["authorization"] == "Bearer token"
    assert json.loads(first.content) == {"step": "review_cv", "input": {"approved": True}}


# -- get: the prompt, the draft, the command -------------------------------------------


def test_get_shows_what_a_waiting_step_asks_its_draft_and_how_to_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = waiting_job("review_cv")
    job.steps[2].input_request.expires_at.FromJsonString("2026-12-02T15:00:00Z")
    cli._print_job(job, "text")
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "status   WAITING_INPUT  60%  Waiting for your review..." in lines
    assert "  - review_cv            WAITING_INPUT attempt 1" in lines
    assert f"waiting  review_cv asks: {PROMPT}" in lines
    assert "         answer by 2026-12-02 15:00:00 UTC" in lines
    draft = out.split("draft\n", 1)[1].split("\nanswer ", 1)[0]
    assert json.loads(draft) == DRAFT
    assert lines[-1] == (
        f"answer   jobctl answer {JOB_ID} --approve  (or --input-file FILE: the draft, edited)"
    )


def test_get_names_the_step_when_several_wait(capsys: pytest.CaptureFixture[str]) -> None:
    cli._print_job(waiting_job("tailor_cv", "review_cv"), "text")
    hints = [line for line in capsys.readouterr().out.splitlines() if line.startswith("answer")]
    assert hints == [
        f"answer   jobctl answer {JOB_ID} --step tailor_cv --approve"
        "  (or --input-file FILE: the draft, edited)",
        f"answer   jobctl answer {JOB_ID} --step review_cv --approve"
        "  (or --input-file FILE: the draft, edited)",
    ]


def test_a_request_without_an_approval_asks_for_json() -> None:
    free = E.InputRequest(prompt="Which city?")
    free.schema.update({"type": "object", "properties": {"city": {"type": "string"}}})
    assert answer_hint(JOB_ID, "pick_city", free, name_step=False) == (
        f"jobctl answer {JOB_ID} --input JSON  (or --input-file FILE)"
    )
    assert accepts_approval(SCHEMA)
    assert accepts_approval({"anyOf": [{"allOf": [{"properties": {"approved": {}}}]}]})
    assert not accepts_approval({"properties": {"approve": {}}})


# -- watch: the prompt in the plain lines and in the live display ----------------------


def input_required(sequence: int, step: str = "review_cv") -> E.JobEvent:
    return E.JobEvent(
        job_id=JOB_ID,
        sequence=sequence,
        type=E.JOB_EVENT_TYPE_INPUT_REQUIRED,
        status=E.JOB_STATUS_WAITING_INPUT,
        step=step,
        attempt=1,
        progress=60,
        phase="Waiting for your review...",
        input_request=request(),
    )


def test_a_plain_watch_prints_the_prompt_and_the_command() -> None:
    out = io.StringIO()
    view = JobProgress(out, console=Console(file=out, force_terminal=False), job_id=JOB_ID)
    view.update(input_required(7))
    assert out.getvalue().splitlines() == [
        "#7 INPUT_REQUIRED review_cv attempt 1  60%  Waiting for your review...",
        f"  review_cv asks: {PROMPT}",
        f"  the draft: jobctl get {JOB_ID}",
        f"  answer: jobctl answer {JOB_ID} --approve  (or --input-file FILE: the draft, edited)",
    ]


def test_the_live_display_shows_the_waiting_step_until_it_is_answered() -> None:
    out = io.StringIO()
    console = Console(file=out, record=True, force_terminal=True, force_interactive=True, width=140)
    view = JobProgress(out, console=console)  # the job id comes with the events
    view.update(
        E.JobEvent(
            job_id=JOB_ID,
            sequence=6,
            type=E.JOB_EVENT_TYPE_STEP_STARTED,
            status=E.JOB_STATUS_RUNNING,
            step="write_cover_letter",
            attempt=1,
        )
    )
    view.update(input_required(7))

    def frame() -> str:
        console.export_text()
        console.print(view.renderable())
        return console.export_text()

    text = frame()
    assert text.splitlines()[0].startswith("WAITING_INPUT")
    assert "? review_cv" in text
    assert "waiting for you" in text
    assert "write_cover_letter running" in text  # the other branch goes on
    assert "review_cv · waiting for you" in text
    assert PROMPT in text
    assert f"Answer: jobctl answer {JOB_ID} --approve" in text
    view.update(
        E.JobEvent(
            job_id=JOB_ID,
            sequence=8,
            type=E.JOB_EVENT_TYPE_STEP_SUCCEEDED,
            status=E.JOB_STATUS_RUNNING,
            step="review_cv",
            attempt=1,
        )
    )
    text = frame()
    assert "✓ review_cv" in text
    assert PROMPT not in text
    assert "jobctl answer" not in text


def test_watching_a_job_already_waiting_shows_its_prompt_at_once() -> None:
    out = io.StringIO()
    console = Console(file=out, record=True, force_terminal=True, force_interactive=True, width=140)
    view = JobProgress(out, console=console)
    view.plan(waiting_job("review_cv"), replay=False)
    console.print(view.renderable())
    text = console.export_text()
    assert PROMPT in text
    assert f"jobctl answer {JOB_ID} --approve" in text
