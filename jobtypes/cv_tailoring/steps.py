"""The steps of ``cv_tailoring``: thin adapters from checkpoints to the résumé engine
(``resume``) and back.

Each step's output is its checkpoint; later steps rebuild what they need from the earlier
checkpoints, so a step that runs again (a retry, a resumed job) sees exactly the same
inputs and produces the same output.
"""

from __future__ import annotations

from typing import Any, NoReturn

from jobtypes.cv_tailoring.prompts import ModelCvWriter
from jobtypes.cv_tailoring.spec import (
    ANALYZE_POSTING,
    LOAD_PROFILE,
    RENDER_PREVIEW,
    REVIEW_ANSWER_SCHEMA,
    REVIEW_CV,
    TAILOR_CV,
    V2,
    WRITE_COVER_LETTER,
)
from resume import (
    Match,
    PostingAnalysis,
    TailoredCv,
    WriterOutputError,
    analyze_posting,
    render_preview,
    score_match,
    tailor_cv,
    tailoring_result,
    write_cover_letter,
)
from resume.steps import load_resume, profile_of
from stepkit import ChatProvider, Handler, Prose, RetryableStepError, StepContext


def _analysis(ctx: StepContext) -> tuple[PostingAnalysis, Match]:
    posting = ctx.checkpoint(ANALYZE_POSTING)
    return PostingAnalysis.from_dict(posting["analysis"]), Match.from_dict(posting["match"])


async def _analyze_posting(ctx: StepContext) -> dict[str, Any]:
    analysis = analyze_posting(ctx.input["job_posting"])
    await ctx.report_progress(50, "Matching your skills to the posting...")
    match = score_match(profile_of(ctx, LOAD_PROFILE), analysis)
    return {"analysis": analysis.to_dict(), "match": match.to_dict()}


def _writer_failed(error: WriterOutputError) -> RetryableStepError:
    # The message names skills, never the text the writer produced.
    return RetryableStepError("WRITER_OUTPUT_REJECTED", str(error))


def _tailor(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        reviewed = ctx.input.get("review") and ctx.type_version > V2.version
        if reviewed and ctx.cursor is not None:
            # A wait again (the job was cancelled or the wait ran out, then retried):
            # the same draft, not a CV written anew.
            _ask_for_review(ctx, dict(ctx.cursor))
        analysis, match = _analysis(ctx)
        # Contact details from the input reach a model only as placeholders.
        writer = ModelCvWriter(Prose.for_step(provider, ctx))
        try:
            cv = await tailor_cv(profile_of(ctx, LOAD_PROFILE), analysis, match, writer)
        except WriterOutputError as error:
            raise _writer_failed(error) from None
        tailored = {"tailored_cv": cv.to_dict()}
        if reviewed:
            # The draft is what the owner approves or edits: the answer, applied to it,
            # becomes this step's checkpoint (version 2 has a step of its own for it).
            await ctx.save_cursor(tailored)
            _ask_for_review(ctx, tailored)
        return tailored

    return handler


def _cover_letter(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        analysis, match = _analysis(ctx)
        writer = ModelCvWriter(Prose.for_step(provider, ctx))
        try:
            letter = await write_cover_letter(
                profile_of(ctx, LOAD_PROFILE), analysis, match, writer
            )
        except WriterOutputError as error:
            raise _writer_failed(error) from None
        return {"cover_letter": letter}

    return handler


#: What the owner is asked when the input says ``"review": true``.
REVIEW_PROMPT = (
    "Check the tailored CV before the preview is built from it: approve it as it is, "
    "or send it back edited."
)


def _ask_for_review(ctx: StepContext, draft: dict[str, Any]) -> NoReturn:
    ctx.request_input(
        REVIEW_PROMPT, {**REVIEW_ANSWER_SCHEMA, "default": {"approved": True}}, draft=draft
    )


async def _review_cv(ctx: StepContext) -> dict[str, Any]:
    """Version 2's review step: with ``review``, ask the owner to approve or edit the
    tailored CV; without, approve it at once."""
    if not ctx.input.get("review"):
        return {"approved": True}
    _ask_for_review(ctx, {"tailored_cv": ctx.checkpoint(TAILOR_CV)["tailored_cv"]})


def _final_cv(ctx: StepContext) -> TailoredCv:
    """The CV as tailored and, if its owner edited it in review, as edited: in version 3
    the CV step's checkpoint is the draft with the answer applied; in version 2 the review
    step's own is (since answers apply to drafts; before, it was the answer alone, whose
    members each replace the draft's: the same CV); version 1 had no review."""
    draft = ctx.checkpoint(TAILOR_CV)["tailored_cv"]
    edited = (ctx.checkpoints.get(REVIEW_CV) or {}).get("tailored_cv") or {}
    return TailoredCv.from_dict({**draft, **edited})


async def _render_preview(ctx: StepContext) -> dict[str, Any]:
    analysis, match = _analysis(ctx)
    cv = _final_cv(ctx)
    letter = str(ctx.checkpoint(WRITE_COVER_LETTER)["cover_letter"])
    preview = render_preview(cv, letter, match, analysis)
    # The last step's output is the job's result.
    return tailoring_result(cv, letter, match, preview)


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    return {
        LOAD_PROFILE: load_resume,
        ANALYZE_POSTING: _analyze_posting,
        TAILOR_CV: _tailor(provider),
        WRITE_COVER_LETTER: _cover_letter(provider),
        REVIEW_CV: _review_cv,
        RENDER_PREVIEW: _render_preview,
    }
