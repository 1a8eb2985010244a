"""An answer to a step's request for input, applied to its draft (``inputs.answered``), and
``cv_tailoring``'s review: the CV's own step asks, from version 3 on."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jobkit.inputs import InputRequest, answered, merge_patch
from jobtypes import CATALOG
from jobtypes.cv_tailoring import steps as cv_steps
from jobtypes.cv_tailoring.spec import REVIEW_CV, TAILOR_CV
from stepkit import InputRequested, StepContext
from stepkit.providers import LocalProvider
from tests.unit.pipeline import struct_round_trip

CV_INPUT: dict[str, Any] = json.loads(
    (Path(cv_steps.__file__).parent / "example.json").read_text(encoding="utf-8")
)["input"]


@pytest.mark.parametrize(
    ("target", "patch", "merged"),
    [
        # RFC 7386, appendix A, those on objects.
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({"a": "foo"}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_an_answer_is_a_json_merge_patch_on_the_draft(
    target: dict[str, Any], patch: dict[str, Any], merged: dict[str, Any]
) -> None:
    before = json.dumps(target)
    assert merge_patch(target, patch) == merged
    assert json.dumps(target) == before  # the draft itself is left as it was


def test_without_a_draft_the_answer_is_the_checkpoint_as_it_came() -> None:
    plain = InputRequest("Continue?", {"type": "object"})
    assert answered(plain, {"continue": False, "note": None}) == {"continue": False, "note": None}
    drafted = InputRequest("Approve?", {"type": "object"}, {"cv": {"name": "A", "skills": ["x"]}})
    assert answered(drafted, {"approved": True}) == {
        "cv": {"name": "A", "skills": ["x"]},
        "approved": True,
    }
    assert answered(drafted, {"cv": {"skills": ["y"]}}) == {"cv": {"name": "A", "skills": ["y"]}}


async def _quiet(percent: int, phase: str = "") -> None:
    pass


def context(
    step: str, job_input: dict[str, Any], outputs: dict[str, dict[str, Any]], type_version: int
) -> StepContext:
    return StepContext(
        "job-1", "cv_tailoring", step, 1, struct_round_trip(job_input), dict(outputs), _quiet,
        type_version=type_version,
    )  # fmt: skip


async def run_until_review(
    job_input: dict[str, Any], version: int, said: int | None = None
) -> tuple[dict[str, dict[str, Any]], str, InputRequested]:
    """The steps of ``cv_tailoring``'s ``version``, in order, each told the job's type
    version is ``said`` (default: ``version``), until one asks: the checkpoints so far, the
    asking step and what it asked."""
    spec = CATALOG["cv_tailoring"].at_version(version)
    assert spec is not None
    handlers = cv_steps.handlers(LocalProvider())
    outputs: dict[str, dict[str, Any]] = {}
    for name in spec.step_names:
        ctx = context(name, job_input, outputs, version if said is None else said)
        try:
            outputs[name] = struct_round_trip(await handlers[name](ctx))
        except InputRequested as asked:
            return outputs, name, asked
    raise AssertionError("no step asked for a review")


async def test_the_cv_step_asks_for_the_review_with_the_cv_as_its_draft() -> None:
    outputs, step, asked = await run_until_review({**CV_INPUT, "review": True}, 3)
    assert step == TAILOR_CV
    assert TAILOR_CV not in outputs
    assert asked.draft is not None
    draft = asked.draft["tailored_cv"]
    assert isinstance(draft, dict)
    assert draft["name"] == "Ada Example"
    # Edited in review: the summary alone; the rest of the CV is the draft's.
    request = InputRequest(asked.prompt, asked.schema, asked.draft)
    checkpoint = answered(request, {"tailored_cv": {"summary": "Edited."}})
    assert checkpoint["tailored_cv"] == {**draft, "summary": "Edited."}
    outputs[TAILOR_CV] = checkpoint
    handlers = cv_steps.handlers(LocalProvider())
    for name in ("write_cover_letter", "render_preview"):
        ctx = context(name, {**CV_INPUT, "review": True}, outputs, 3)
        outputs[name] = struct_round_trip(await handlers[name](ctx))
    result = outputs["render_preview"]
    assert result["tailored_cv"]["summary"] == "Edited."
    assert "Edited." in result["preview_markdown"]


async def test_a_wait_asked_again_after_a_retry_shows_the_same_draft_not_a_new_cv() -> None:
    outputs, _, _ = await run_until_review({**CV_INPUT, "review": True}, 3)
    saved: list[dict[str, Any]] = []

    async def save_cursor(cursor: Any, children: Any = ()) -> None:
        saved.append(dict(cursor))

    handler = cv_steps.handlers(LocalProvider())[TAILOR_CV]
    first = replace(context(TAILOR_CV, {**CV_INPUT, "review": True}, outputs, 3),
                    save_cursor=save_cursor)  # fmt: skip
    with pytest.raises(InputRequested) as asked:
        await handler(first)
    # The draft is kept as the step's cursor before it asks.
    assert saved == [asked.value.draft]
    # The next attempt (a RetryJob after a cancel, or after the wait ran out) asks with the
    # cursor's draft as it is: nothing is written again.
    kept = {"tailored_cv": {**saved[0]["tailored_cv"], "summary": "Kept from the first."}}
    # No earlier checkpoints: nothing to write the CV from, were it written again.
    again = replace(context(TAILOR_CV, {**CV_INPUT, "review": True}, {}, 3), cursor=kept)
    with pytest.raises(InputRequested) as asked_again:
        await handler(again)
    assert asked_again.value.draft == kept


async def test_a_job_of_version_2_is_reviewed_in_its_own_step_and_never_twice() -> None:
    outputs, step, asked = await run_until_review({**CV_INPUT, "review": True}, 2)
    assert step == REVIEW_CV
    assert asked.draft == {"tailored_cv": outputs[TAILOR_CV]["tailored_cv"]}
    # A dispatch from a release that sent no version (0) is of version 2 at the newest.
    _, step, _ = await run_until_review({**CV_INPUT, "review": True}, 2, said=0)
    assert step == REVIEW_CV


async def test_without_review_nothing_asks() -> None:
    with pytest.raises(AssertionError, match="no step asked"):
        await run_until_review(CV_INPUT, 3)
